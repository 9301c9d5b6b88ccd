//! SQL of the bookings service (tables `bookings_*`). Portable SQL; runs on SQLite and PostgreSQL.
//! Lock order everywhere: booking row, inventory rows by type id, event totals, user counts.

use std::collections::HashMap;

use tg_events::ports::TypeCounts;
use tg_messaging::OutboxWrite;
use tg_platform::{
    bind_args,
    bus::DomainEvent,
    clock::{now_ms, rfc3339},
    db::{placeholders, Arg, Db},
    with_db, with_tx,
};

use crate::{
    model::{from_cents, BookingFacts, BookingView, ItemView, TicketView},
    tickets::TicketClaims,
};

/// A booking's facts (see [`BookingFacts`]), read inside the transaction `$tx`.
macro_rules! booking_facts {
    ($tx:ident, $id:expr) => {{
        let (event_id, user_id, amount_cents, currency): (String, String, i64, String) =
            sqlx::query_as("SELECT event_id, user_id, amount_cents, currency FROM bookings_bookings WHERE id = $1")
                .bind($id)
                .fetch_one(&mut *$tx)
                .await?;
        let items: Vec<(String, i64)> =
            sqlx::query_as("SELECT type_id, quantity FROM bookings_items WHERE booking_id = $1 ORDER BY type_id")
                .bind($id)
                .fetch_all(&mut *$tx)
                .await?;
        BookingFacts { id: $id.to_owned(), event_id, user_id, amount_cents, currency, items }
    }};
}

/// Tickets to insert with a confirmation: (claims, signed token) each.
pub type NewTickets = [(TicketClaims, String)];

#[derive(Clone)]
pub struct Store {
    pub db: Db,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// A hold whose time is up.
    Expire,
    /// A hold the user gave up.
    CancelHold,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketRefusal {
    NotConfirmed,
    NoSuchTicket(String),
    NotRefundable(String),
    CheckedIn(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    AlreadyConfirmed,
    Cancelled,
    SeatsGone,
}

/// Counters next to what the booking rows say, for invariant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountCheck {
    /// (type id, quantity, sold counter, held counter, confirmed rows, pending rows)
    pub types: Vec<(String, i64, i64, i64, i64, i64)>,
    /// (capacity, sold counter, held counter)
    pub totals: (i64, i64, i64),
    /// Users whose counter differs from their pending + confirmed rows.
    pub user_count_mismatches: i64,
    /// Most held + confirmed tickets of any one user.
    pub max_per_user: i64,
}

#[derive(sqlx::FromRow)]
struct BookingRow {
    id: String,
    user_id: String,
    event_id: String,
    status: String,
    amount_cents: i64,
    currency: String,
    expires_at: i64,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    type_id: String,
    quantity: i64,
    unit_price_cents: i64,
    refundable: bool,
}

#[derive(sqlx::FromRow)]
pub struct TicketRow {
    pub id: String,
    pub code: String,
    pub booking_id: String,
    pub event_id: String,
    pub type_id: String,
    pub user_id: String,
    pub status: String,
    pub token: String,
    pub checked_in_at: Option<i64>,
    pub checkin_gate: Option<String>,
}

impl TicketRow {
    pub fn view(&self) -> TicketView {
        TicketView {
            id: self.id.clone(),
            code: self.code.clone(),
            booking_id: self.booking_id.clone(),
            event_id: self.event_id.clone(),
            ticket_type_id: self.type_id.clone(),
            status: self.status.clone(),
            token: self.token.clone(),
            qr_svg: format!("/api/v1/me/tickets/{}/qr.svg", self.id),
            checked_in_at: self.checked_in_at.map(rfc3339),
        }
    }
}

const TICKET_COLS: &str =
    "id, code, booking_id, event_id, type_id, user_id, status, token, checked_in_at, checkin_gate";

#[derive(Debug)]
enum TxError {
    Db(sqlx::Error),
    SeatsGone,
}

impl From<sqlx::Error> for TxError {
    fn from(e: sqlx::Error) -> Self {
        TxError::Db(e)
    }
}

impl Store {
    pub async fn by_idempotency_key(&self, user_id: &str, key: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, request_hash FROM bookings_bookings WHERE user_id = $1 AND idempotency_key = $2")
            .bind(user_id).bind(key).fetch_optional(pool).await)
    }

    pub async fn booking(&self, id: &str) -> Result<Option<BookingView>, sqlx::Error> {
        let row: Option<BookingRow> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, user_id, event_id, status, amount_cents, currency, expires_at, created_at FROM bookings_bookings WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        let items: Vec<ItemRow> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT type_id, quantity, unit_price_cents, refundable FROM bookings_items WHERE booking_id = $1 ORDER BY type_id")
            .bind(id).fetch_all(pool).await)?;
        Ok(Some(BookingView {
            id: row.id,
            event_id: row.event_id,
            user_id: row.user_id,
            status: row.status,
            items: items
                .into_iter()
                .map(|i| ItemView {
                    ticket_type_id: i.type_id,
                    quantity: i.quantity,
                    unit_price: from_cents(i.unit_price_cents),
                    refundable: i.refundable,
                })
                .collect(),
            total_amount: from_cents(row.amount_cents),
            currency: row.currency,
            expires_at: rfc3339(row.expires_at),
            created_at: rfc3339(row.created_at),
        }))
    }

    pub async fn bookings_of_user(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT id FROM bookings_bookings WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3")
            .bind(user_id).bind(after).bind(limit).fetch_all(pool).await)
    }

    pub async fn due_holds(&self, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT id FROM bookings_bookings WHERE status = 'pending_payment' AND expires_at <= $1 ORDER BY expires_at LIMIT $2")
            .bind(now).bind(limit).fetch_all(pool).await)
    }

    /// Give a booking's seats back and move it to its end state, in one transaction. `None` when the
    /// booking was not in the expected state (another instance or request got there first).
    pub async fn release(
        &self,
        id: &str,
        kind: Release,
        actor: Option<&str>,
    ) -> Result<Option<BookingView>, sqlx::Error> {
        let now = now_ms();
        let (from, to, counter, action) = match kind {
            Release::Expire => ("pending_payment", "expired", "held", "booking.expired"),
            Release::CancelHold => ("pending_payment", "cancelled", "held", "booking.cancelled"),
        };
        // Only expiry waits for the clock; the user may give a hold up at any time.
        let deadline = if kind == Release::Expire { now } else { i64::MAX };
        let inv_sql =
            format!("UPDATE bookings_inventory SET {counter} = {counter} - $3 WHERE event_id = $1 AND type_id = $2");
        let tot_sql = format!("UPDATE bookings_event_totals SET {counter} = {counter} - $2 WHERE event_id = $1");
        let done: bool = with_tx!(&self.db, tx => {
            let moved = sqlx::query(
                "UPDATE bookings_bookings SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2 AND expires_at <= $5")
                .bind(id).bind(from).bind(to).bind(now).bind(deadline).execute(&mut *tx).await?.rows_affected();
            match moved {
                0 => Ok::<bool, sqlx::Error>(false),
                _ => {
                    let facts = booking_facts!(tx, id);
                    let (event_id, user_id, items) = (&facts.event_id, &facts.user_id, &facts.items);
                    let total: i64 = items.iter().map(|(_, q)| q).sum();
                    for (t, q) in items {
                        sqlx::query(&inv_sql).bind(event_id).bind(t).bind(q).execute(&mut *tx).await?;
                    }
                    sqlx::query(&tot_sql).bind(event_id).bind(total).execute(&mut *tx).await?;
                    sqlx::query("UPDATE bookings_user_counts SET tickets = tickets - $3 WHERE event_id = $1 AND user_id = $2")
                        .bind(event_id).bind(user_id).bind(total).execute(&mut *tx).await?;
                    sqlx::query("INSERT INTO bookings_audit_log (id, at, actor_id, action, booking_id) VALUES ($1, $2, $3, $4, $5)")
                        .bind(uuid::Uuid::now_v7().to_string()).bind(now).bind(actor).bind(action).bind(id)
                        .execute(&mut *tx).await?;
                    let message = match kind {
                        Release::Expire => facts.expired(),
                        Release::CancelHold => facts.cancelled(to, Vec::new(), 0),
                    };
                    tx.enqueue(&[message]).await?;
                    Ok(true)
                }
            }
        })?;
        if done {
            self.booking(id).await
        } else {
            Ok(None)
        }
    }

    /// Cancel some valid tickets of a confirmed booking for a refund and return their seats; the
    /// booking becomes `cancelled` when none is left. Tickets of non-refundable types are refused.
    /// Returns the cancelled tickets' worth in cents, or why they cannot be cancelled.
    pub async fn cancel_tickets(
        &self,
        booking_id: &str,
        ticket_ids: &[String],
        actor: Option<&str>,
    ) -> Result<Result<i64, TicketRefusal>, sqlx::Error> {
        let now = now_ms();
        let lock = self.db.for_update();
        let booking_sql = format!("SELECT status FROM bookings_bookings WHERE id = $1{lock}");
        with_tx!(&self.db, tx => {
            let status: Option<String> = sqlx::query_scalar(&booking_sql).bind(booking_id).fetch_optional(&mut *tx).await?;
            if status.as_deref() != Some("confirmed") {
                return Ok(Err(TicketRefusal::NotConfirmed));
            }
            let facts = booking_facts!(tx, booking_id);
            let prices: Vec<(String, i64, bool)> = sqlx::query_as(
                "SELECT type_id, unit_price_cents, refundable FROM bookings_items WHERE booking_id = $1")
                .bind(booking_id).fetch_all(&mut *tx).await?;
            let mut per_type: std::collections::BTreeMap<String, i64> = Default::default();
            let mut worth = 0;
            for ticket_id in ticket_ids {
                let row: Option<(String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT type_id, status, checked_in_at FROM bookings_tickets WHERE id = $1 AND booking_id = $2")
                    .bind(ticket_id).bind(booking_id).fetch_optional(&mut *tx).await?;
                let Some((type_id, "valid", checked_in)) = row.as_ref().map(|(t, s, c)| (t.clone(), s.as_str(), *c)) else {
                    return Ok(Err(TicketRefusal::NoSuchTicket(ticket_id.clone())));
                };
                if checked_in.is_some() {
                    return Ok(Err(TicketRefusal::CheckedIn(ticket_id.clone())));
                }
                let Some((_, price, refundable)) = prices.iter().find(|(t, _, _)| *t == type_id) else {
                    return Ok(Err(TicketRefusal::NoSuchTicket(ticket_id.clone())));
                };
                if !refundable {
                    return Ok(Err(TicketRefusal::NotRefundable(type_id)));
                }
                worth += price;
                *per_type.entry(type_id).or_default() += 1;
            }
            let total: i64 = per_type.values().sum();
            for (t, n) in &per_type {
                sqlx::query("UPDATE bookings_inventory SET sold = sold - $3 WHERE event_id = $1 AND type_id = $2")
                    .bind(&facts.event_id).bind(t).bind(n).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE bookings_event_totals SET sold = sold - $2 WHERE event_id = $1")
                .bind(&facts.event_id).bind(total).execute(&mut *tx).await?;
            sqlx::query("UPDATE bookings_user_counts SET tickets = tickets - $3 WHERE event_id = $1 AND user_id = $2")
                .bind(&facts.event_id).bind(&facts.user_id).bind(total).execute(&mut *tx).await?;
            for ticket_id in ticket_ids {
                let n = sqlx::query("UPDATE bookings_tickets SET status = 'cancelled' WHERE id = $1 AND status = 'valid'")
                    .bind(ticket_id).execute(&mut *tx).await?.rows_affected();
                if n != 1 {
                    // Named twice: dropping the transaction undoes the counters changed above.
                    return Ok(Err(TicketRefusal::NoSuchTicket(ticket_id.clone())));
                }
            }
            let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bookings_tickets WHERE booking_id = $1 AND status = 'valid'")
                .bind(booking_id).fetch_one(&mut *tx).await?;
            let status = if left == 0 { "cancelled" } else { "confirmed" };
            sqlx::query("UPDATE bookings_bookings SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(booking_id).bind(status).bind(now).execute(&mut *tx).await?;
            let detail = serde_json::json!({"tickets": ticket_ids}).to_string();
            sqlx::query("INSERT INTO bookings_audit_log (id, at, actor_id, action, booking_id, detail) VALUES ($1, $2, $3, 'booking.cancelled', $4, $5)")
                .bind(uuid::Uuid::now_v7().to_string()).bind(now).bind(actor).bind(booking_id).bind(&detail)
                .execute(&mut *tx).await?;
            tx.enqueue(&[facts.cancelled(status, ticket_ids.to_vec(), worth)]).await?;
            Ok::<_, sqlx::Error>(Ok(worth))
        })
    }

    /// Confirm a paid booking (see `BookingsService::confirm`), inserting its `tickets` and queueing
    /// `booking.confirmed` in the same transaction.
    pub async fn confirm(
        &self,
        id: &str,
        now: i64,
        max_per_user: i64,
        holder: &str,
        tickets: &NewTickets,
    ) -> Result<ConfirmOutcome, sqlx::Error> {
        let insert_tickets = tickets_insert(id, holder, tickets);
        let row_sql = format!("SELECT status, expires_at FROM bookings_bookings WHERE id = $1{}", self.db.for_update());
        let fresh: Option<ConfirmOutcome> = with_tx!(&self.db, tx => {
            let row: Option<(String, i64)> = sqlx::query_as(&row_sql).bind(id).fetch_optional(&mut *tx).await?;
            let Some((status, expires_at)) = row else { return Ok(ConfirmOutcome::Cancelled) };
            match status.as_str() {
                "confirmed" => Ok::<_, sqlx::Error>(Some(ConfirmOutcome::AlreadyConfirmed)),
                "cancelled" => Ok(Some(ConfirmOutcome::Cancelled)),
                "pending_payment" if expires_at > now => {
                    let facts = booking_facts!(tx, id);
                    let total: i64 = facts.items.iter().map(|(_, q)| q).sum();
                    for (t, q) in &facts.items {
                        sqlx::query("UPDATE bookings_inventory SET held = held - $3, sold = sold + $3 WHERE event_id = $1 AND type_id = $2")
                            .bind(&facts.event_id).bind(t).bind(q).execute(&mut *tx).await?;
                    }
                    sqlx::query("UPDATE bookings_event_totals SET held = held - $2, sold = sold + $2 WHERE event_id = $1")
                        .bind(&facts.event_id).bind(total).execute(&mut *tx).await?;
                    sqlx::query("UPDATE bookings_bookings SET status = 'confirmed', updated_at = $2 WHERE id = $1")
                        .bind(id).bind(now).execute(&mut *tx).await?;
                    sqlx::query("INSERT INTO bookings_audit_log (id, at, action, booking_id) VALUES ($1, $2, 'booking.confirmed', $3)")
                        .bind(uuid::Uuid::now_v7().to_string()).bind(now).bind(id).execute(&mut *tx).await?;
                    if let Some((sql, args)) = &insert_tickets {
                        bind_args!(sqlx::query(sql), args).execute(&mut *tx).await?;
                    }
                    tx.enqueue(&[facts.confirmed()]).await?;
                    Ok(Some(ConfirmOutcome::Confirmed))
                }
                // Expired, or past its time and not yet swept: handled below.
                _ => Ok(None),
            }
        })?;
        if let Some(outcome) = fresh {
            return Ok(outcome);
        }
        // A late payment: return the hold's seats first (if the sweeper has not), then try to take
        // them again as sold, all or nothing, within the same limits as a new hold.
        self.release(id, Release::Expire, None).await?;
        match self.retake(id, now, max_per_user, insert_tickets.as_ref()).await {
            Ok(()) => Ok(ConfirmOutcome::Confirmed),
            Err(TxError::SeatsGone) => Ok(ConfirmOutcome::SeatsGone),
            Err(TxError::Db(e)) => Err(e),
        }
    }

    async fn retake(
        &self,
        id: &str,
        now: i64,
        max_per_user: i64,
        insert_tickets: Option<&(String, Vec<Arg>)>,
    ) -> Result<(), TxError> {
        with_tx!(&self.db, tx => {
            let moved = sqlx::query("UPDATE bookings_bookings SET status = 'confirmed', updated_at = $2 WHERE id = $1 AND status = 'expired'")
                .bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
            if moved != 1 {
                return Err(TxError::SeatsGone);
            }
            let facts = booking_facts!(tx, id);
            let (event_id, user, items) = (&facts.event_id, &facts.user_id, &facts.items);
            let total: i64 = items.iter().map(|(_, q)| q).sum();
            for (t, q) in items {
                let n = sqlx::query(
                    "UPDATE bookings_inventory SET sold = sold + $3 WHERE event_id = $1 AND type_id = $2 AND sold + held + $3 <= quantity")
                    .bind(event_id).bind(t).bind(q).execute(&mut *tx).await?.rows_affected();
                if n != 1 {
                    return Err(TxError::SeatsGone);
                }
            }
            let n = sqlx::query("UPDATE bookings_event_totals SET sold = sold + $2 WHERE event_id = $1 AND sold + held + $2 <= capacity")
                .bind(event_id).bind(total).execute(&mut *tx).await?.rows_affected();
            if n != 1 {
                return Err(TxError::SeatsGone);
            }
            // The per-user limit holds for late payments too: the user may have booked again meanwhile.
            let n = sqlx::query(
                "UPDATE bookings_user_counts SET tickets = tickets + $3 WHERE event_id = $1 AND user_id = $2 AND tickets + $3 <= $4")
                .bind(event_id).bind(user).bind(total).bind(max_per_user).execute(&mut *tx).await?.rows_affected();
            if n != 1 {
                return Err(TxError::SeatsGone);
            }
            sqlx::query("INSERT INTO bookings_audit_log (id, at, action, booking_id, detail) VALUES ($1, $2, 'booking.confirmed', $3, '{\"late_payment\":true}')")
                .bind(uuid::Uuid::now_v7().to_string()).bind(now).bind(id).execute(&mut *tx).await?;
            if let Some((sql, args)) = insert_tickets {
                bind_args!(sqlx::query(sql), args).execute(&mut *tx).await?;
            }
            tx.enqueue(&[facts.confirmed()]).await?;
            Ok::<(), TxError>(())
        })
    }

    pub async fn ticket_holders(&self, event_id: &str) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM bookings_tickets WHERE event_id = $1 AND status = 'valid' ORDER BY user_id")
            .bind(event_id).fetch_all(pool).await)
    }

    pub async fn valid_tickets_of_booking(&self, booking_id: &str) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT id FROM bookings_tickets WHERE booking_id = $1 AND status = 'valid' ORDER BY id")
            .bind(booking_id).fetch_all(pool).await)
    }

    pub async fn tickets_of_user(&self, user_id: &str) -> Result<Vec<TicketRow>, sqlx::Error> {
        let sql = format!("SELECT {TICKET_COLS} FROM bookings_tickets WHERE user_id = $1 ORDER BY id DESC LIMIT 500");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await)
    }

    pub async fn ticket(&self, id: &str) -> Result<Option<TicketRow>, sqlx::Error> {
        let sql = format!("SELECT {TICKET_COLS} FROM bookings_tickets WHERE id = $1");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
    }

    pub async fn ticket_by_code(&self, event_id: &str, code: &str) -> Result<Option<TicketRow>, sqlx::Error> {
        let sql = format!("SELECT {TICKET_COLS} FROM bookings_tickets WHERE code = $1 AND event_id = $2");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(code).bind(event_id).fetch_optional(pool).await)
    }

    pub async fn tickets_of_event(&self, event_id: &str) -> Result<Vec<TicketRow>, sqlx::Error> {
        let sql = format!("SELECT {TICKET_COLS} FROM bookings_tickets WHERE event_id = $1 ORDER BY id");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(event_id).fetch_all(pool).await)
    }

    /// Mark a ticket checked in if it was not, queueing `message` if so; returns whether this call did it.
    pub async fn check_in(
        &self,
        ticket_id: &str,
        at: i64,
        gate: Option<&str>,
        message: &DomainEvent,
    ) -> Result<bool, sqlx::Error> {
        with_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE bookings_tickets SET checked_in_at = $2, checkin_gate = $3 WHERE id = $1 AND checked_in_at IS NULL AND status = 'valid'")
                .bind(ticket_id).bind(at).bind(gate).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                tx.enqueue(std::slice::from_ref(message)).await?;
            }
            Ok::<_, sqlx::Error>(n == 1)
        })
    }

    pub async fn scan_result(&self, nonce: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as("SELECT event_id, result FROM bookings_checkins WHERE nonce = $1")
            .bind(nonce).fetch_optional(pool).await)
    }

    /// Remember a scan's answer under its nonce; false when the nonce was already taken.
    pub async fn save_scan(
        &self,
        nonce: &str,
        event_id: &str,
        ticket_id: Option<&str>,
        result: &str,
    ) -> Result<bool, sqlx::Error> {
        let n = with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO bookings_checkins (nonce, event_id, ticket_id, result, scanned_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
            .bind(nonce).bind(event_id).bind(ticket_id).bind(result).bind(now_ms())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn is_staff(&self, event_id: &str, email: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM bookings_staff WHERE event_id = $1 AND email = $2").bind(event_id).bind(email).fetch_one(pool).await)?;
        Ok(n > 0)
    }

    pub async fn set_staff(&self, event_id: &str, emails: &[String]) -> Result<(), sqlx::Error> {
        with_tx!(&self.db, tx => {
            sqlx::query("DELETE FROM bookings_staff WHERE event_id = $1").bind(event_id).execute(&mut *tx).await?;
            for e in emails {
                sqlx::query("INSERT INTO bookings_staff (event_id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(event_id).bind(e).execute(&mut *tx).await?;
            }
            Ok::<(), sqlx::Error>(())
        })
    }

    pub async fn staff(&self, event_id: &str) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar("SELECT email FROM bookings_staff WHERE event_id = $1 ORDER BY email")
            .bind(event_id).fetch_all(pool).await)
    }

    pub async fn inventory(&self, event_id: &str) -> Result<HashMap<String, TypeCounts>, sqlx::Error> {
        let rows: Vec<(String, i64, i64)> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT type_id, sold, held FROM bookings_inventory WHERE event_id = $1").bind(event_id).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(t, sold, held)| (t, TypeCounts { sold, held })).collect())
    }

    pub async fn sold_totals(&self, event_ids: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
        if event_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ph: Vec<String> = (1..=event_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT event_id, sold FROM bookings_event_totals WHERE event_id IN ({})", ph.join(", "));
        let args: Vec<Arg> = event_ids.iter().map(|e| Arg::Text(e.clone())).collect();
        let rows: Vec<(String, i64)> =
            with_db!(&self.db, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await)?;
        Ok(rows.into_iter().collect())
    }

    /// (event, capacity, sold, held) of `event_ids`, for the stock gauge.
    pub async fn stock(&self, event_ids: &[String]) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ph: Vec<String> = (1..=event_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT event_id, capacity, sold, held FROM bookings_event_totals WHERE event_id IN ({})",
            ph.join(", ")
        );
        let args: Vec<Arg> = event_ids.iter().map(|e| Arg::Text(e.clone())).collect();
        with_db!(&self.db, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await)
    }

    pub async fn has_ticket(&self, event_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM bookings_tickets WHERE event_id = $1 AND user_id = $2 AND status = 'valid'")
            .bind(event_id).bind(user_id).fetch_one(pool).await)?;
        Ok(n > 0)
    }

    pub async fn count_check(&self, event_id: &str) -> Result<CountCheck, sqlx::Error> {
        let types: Vec<(String, i64, i64, i64, i64, i64)> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT i.type_id, i.quantity, i.sold, i.held,
                COALESCE((SELECT CAST(SUM(it.quantity) AS BIGINT) FROM bookings_items it JOIN bookings_bookings b ON b.id = it.booking_id
                          WHERE b.event_id = i.event_id AND it.type_id = i.type_id AND b.status = 'confirmed'), 0),
                COALESCE((SELECT CAST(SUM(it.quantity) AS BIGINT) FROM bookings_items it JOIN bookings_bookings b ON b.id = it.booking_id
                          WHERE b.event_id = i.event_id AND it.type_id = i.type_id AND b.status = 'pending_payment'), 0)
             FROM bookings_inventory i WHERE i.event_id = $1 ORDER BY i.type_id")
            .bind(event_id).fetch_all(pool).await)?;
        let totals: Option<(i64, i64, i64)> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT capacity, sold, held FROM bookings_event_totals WHERE event_id = $1").bind(event_id).fetch_optional(pool).await)?;
        let per_user: Vec<(String, i64, i64)> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT u.user_id, u.tickets,
                COALESCE((SELECT CAST(SUM(it.quantity) AS BIGINT) FROM bookings_items it JOIN bookings_bookings b ON b.id = it.booking_id
                          WHERE b.event_id = u.event_id AND b.user_id = u.user_id AND b.status IN ('pending_payment', 'confirmed')), 0)
             FROM bookings_user_counts u WHERE u.event_id = $1")
            .bind(event_id).fetch_all(pool).await)?;
        Ok(CountCheck {
            types,
            totals: totals.unwrap_or_default(),
            user_count_mismatches: per_user.iter().filter(|(_, c, rows)| c != rows).count() as i64,
            max_per_user: per_user.iter().map(|(_, _, rows)| *rows).max().unwrap_or(0),
        })
    }
}

/// The statement inserting a confirmation's tickets; `None` when there are none.
fn tickets_insert(booking_id: &str, user_id: &str, tickets: &NewTickets) -> Option<(String, Vec<Arg>)> {
    if tickets.is_empty() {
        return None;
    }
    let now = now_ms();
    let mut args = Vec::new();
    for (c, token) in tickets {
        args.extend([
            Arg::Text(c.tid.clone()),
            Arg::Text(c.code.clone()),
            Arg::Text(booking_id.to_owned()),
            Arg::Text(c.eid.clone()),
            Arg::Text(c.tt.clone()),
            Arg::Text(user_id.to_owned()),
            Arg::Text("valid".into()),
            Arg::Text(token.clone()),
            Arg::Int(now),
        ]);
    }
    let sql = format!(
        "INSERT INTO bookings_tickets (id, code, booking_id, event_id, type_id, user_id, status, token, created_at) VALUES {}",
        placeholders(tickets.len(), 9, 1)
    );
    Some((sql, args))
}

/// One day's new tickets of one type (tickets still valid), for the sales chart.
#[derive(sqlx::FromRow)]
pub struct DailySales {
    /// Days since the Unix epoch, in the time zone the offset was given for.
    pub day: i64,
    pub type_id: String,
    pub tickets: i64,
}

/// Per ticket type: valid tickets, revenue from them and how many were scanned.
#[derive(sqlx::FromRow)]
pub struct TypeSales {
    pub type_id: String,
    pub tickets: i64,
    pub revenue_cents: i64,
    pub checked_in: i64,
}

impl Store {
    /// Valid tickets per day and type; days begin at midnight `offset_ms` ahead of UTC.
    pub async fn daily_sales(&self, event_id: &str, offset_ms: i64) -> Result<Vec<DailySales>, sqlx::Error> {
        let sql = "SELECT (created_at + $2) / 86400000 AS day, type_id, COUNT(*) AS tickets FROM bookings_tickets \
                   WHERE event_id = $1 AND status = 'valid' GROUP BY 1, 2 ORDER BY 1, 2";
        with_db!(&self.db, pool => sqlx::query_as(sql).bind(event_id).bind(offset_ms).fetch_all(pool).await)
    }

    pub async fn type_sales(&self, event_id: &str) -> Result<Vec<TypeSales>, sqlx::Error> {
        let sql = "SELECT t.type_id, COUNT(*) AS tickets, CAST(COALESCE(SUM(i.unit_price_cents), 0) AS BIGINT) AS revenue_cents, \
                   COUNT(t.checked_in_at) AS checked_in \
                   FROM bookings_tickets t JOIN bookings_items i ON i.booking_id = t.booking_id AND i.type_id = t.type_id \
                   WHERE t.event_id = $1 AND t.status = 'valid' GROUP BY t.type_id ORDER BY t.type_id";
        with_db!(&self.db, pool => sqlx::query_as(sql).bind(event_id).fetch_all(pool).await)
    }
}
