//! The platform's invariants, checked against its database (`ticketgw check`): what must hold
//! after any crash, outage or load once the background work has settled. Read-only, and the one
//! place that reads several services' tables at once (a diagnostic, not a service).

use tg_platform::{db::Db, with_db};

/// A broken invariant, in words.
pub type Violation = String;

/// Every invariant; an empty list when all hold. `settled` adds the ones that hold only once
/// reconciliation and delivery have caught up (no unsettled success, no pending refund, every
/// confirmed booking's notice).
pub async fn check(db: &Db, settled: bool) -> anyhow::Result<Vec<Violation>> {
    let mut out = Vec::new();
    out.extend(counters_equal_rows(db).await?);
    out.extend(paid_means_tickets_or_refund(db, settled).await?);
    out.extend(notices_exactly_once(db, settled).await?);
    Ok(out)
}

/// Held and sold counters equal the bookings and tickets they count; never oversold.
async fn counters_equal_rows(db: &Db) -> anyhow::Result<Vec<Violation>> {
    let types: Vec<(String, String, i64, i64, i64, i64, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT i.event_id, i.type_id, i.quantity, i.held, i.sold,
            (SELECT CAST(COALESCE(SUM(it.quantity), 0) AS BIGINT) FROM bookings_items it JOIN bookings_bookings b ON b.id = it.booking_id
              WHERE b.event_id = i.event_id AND it.type_id = i.type_id AND b.status = 'pending_payment'),
            (SELECT COUNT(*) FROM bookings_tickets t
              WHERE t.event_id = i.event_id AND t.type_id = i.type_id AND t.status = 'valid')
         FROM bookings_inventory i").fetch_all(pool).await)?;
    let mut out = Vec::new();
    for (event, t, quantity, held, sold, held_rows, sold_rows) in types {
        if held != held_rows || sold != sold_rows {
            out.push(format!("{event}/{t}: counters held {held} sold {sold}, rows held {held_rows} sold {sold_rows}"));
        }
        if held + sold > quantity {
            out.push(format!("{event}/{t}: oversold: {held} held + {sold} sold > {quantity}"));
        }
    }
    let totals: Vec<(String, i64, i64, i64, i64, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT e.event_id, e.capacity, e.held, e.sold,
            (SELECT CAST(COALESCE(SUM(i.held), 0) AS BIGINT) FROM bookings_inventory i WHERE i.event_id = e.event_id),
            (SELECT CAST(COALESCE(SUM(i.sold), 0) AS BIGINT) FROM bookings_inventory i WHERE i.event_id = e.event_id)
         FROM bookings_event_totals e").fetch_all(pool).await)?;
    for (event, capacity, held, sold, type_held, type_sold) in totals {
        if held != type_held || sold != type_sold {
            out.push(format!("{event}: totals held {held} sold {sold}, types held {type_held} sold {type_sold}"));
        }
        if held + sold > capacity {
            out.push(format!("{event}: over capacity: {held} + {sold} > {capacity}"));
        }
    }
    let users: Vec<(String, String, i64, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT u.event_id, u.user_id, u.tickets,
            (SELECT CAST(COALESCE(SUM(it.quantity), 0) AS BIGINT) FROM bookings_items it JOIN bookings_bookings b ON b.id = it.booking_id
              WHERE b.event_id = u.event_id AND b.user_id = u.user_id AND b.status = 'pending_payment')
          + (SELECT COUNT(*) FROM bookings_tickets t
              WHERE t.event_id = u.event_id AND t.user_id = u.user_id AND t.status = 'valid')
         FROM bookings_user_counts u").fetch_all(pool).await)?;
    for (event, user, counted, rows) in users {
        if counted != rows {
            out.push(format!("{event}: user {user} counted {counted} tickets, rows {rows}"));
        }
    }
    Ok(out)
}

/// A payment that took money, with what its booking and refunds say.
#[derive(sqlx::FromRow)]
struct PaidRow {
    id: String,
    booking_id: String,
    status: String,
    amount: i64,
    refunded: i64,
    booking_status: Option<String>,
    seats: i64,
    tickets: i64,
    refund_rows: i64,
}

/// Money taken means tickets or the money back: a successful payment's booking is confirmed with
/// its tickets, a refunded one's refunds add up to what was refunded, and (settled) nothing is left
/// pending that should have been resolved.
async fn paid_means_tickets_or_refund(db: &Db, settled: bool) -> anyhow::Result<Vec<Violation>> {
    let paid: Vec<PaidRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT p.id, p.booking_id, p.status, p.amount_cents AS amount, p.refunded_cents AS refunded,
            b.status AS booking_status,
            (SELECT CAST(COALESCE(SUM(it.quantity), 0) AS BIGINT) FROM bookings_items it WHERE it.booking_id = p.booking_id) AS seats,
            (SELECT COUNT(*) FROM bookings_tickets t WHERE t.booking_id = p.booking_id) AS tickets,
            (SELECT CAST(COALESCE(SUM(r.amount_cents), 0) AS BIGINT) FROM payments_refunds r WHERE r.payment_id = p.id) AS refund_rows
         FROM payments_payments p LEFT JOIN bookings_bookings b ON b.id = p.booking_id
         WHERE p.status IN ('succeeded', 'partially_refunded', 'refunded')").fetch_all(pool).await)?;
    let mut out = Vec::new();
    for PaidRow { id, booking_id: booking, status, amount, refunded, booking_status, seats, tickets, refund_rows } in
        paid
    {
        if refund_rows != refunded {
            out.push(format!("payment {id}: refunded {refunded} but refunds add up to {refund_rows}"));
        }
        if status == "refunded" {
            if refunded != amount {
                out.push(format!("payment {id}: refunded but only {refunded} of {amount}"));
            }
            continue;
        }
        let confirmed = booking_status.as_deref() == Some("confirmed") && tickets == seats && seats > 0;
        // A success waits for its settlement; once settled it must have its tickets.
        if !confirmed && (settled || status == "partially_refunded") {
            out.push(format!(
                "payment {id} ({status}): booking {booking} is {} with {tickets} of {seats} tickets and no full refund",
                booking_status.as_deref().unwrap_or("missing")
            ));
        }
    }
    if settled {
        let pending_refunds: Vec<(String, String)> = with_db!(db, pool => sqlx::query_as(
            "SELECT id, payment_id FROM payments_refunds WHERE status = 'pending'").fetch_all(pool).await)?;
        for (id, payment) in pending_refunds {
            out.push(format!("refund {id} of payment {payment} still pending"));
        }
        let unsettled: Vec<(String,)> = with_db!(db, pool => sqlx::query_as(
            "SELECT id FROM payments_payments WHERE status = 'succeeded' AND settled_at IS NULL").fetch_all(pool).await)?;
        for (id,) in unsettled {
            out.push(format!("payment {id}: succeeded but not settled"));
        }
    }
    Ok(out)
}

/// Every confirmed booking's notice is in its holder's mailbox exactly once (never twice).
async fn notices_exactly_once(db: &Db, settled: bool) -> anyhow::Result<Vec<Violation>> {
    let rows: Vec<(String, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT b.id, (SELECT COUNT(*) FROM notifications_mailbox m
                        WHERE m.kind = 'booking_confirmed' AND m.booking_id = b.id)
         FROM bookings_bookings b WHERE b.status = 'confirmed'").fetch_all(pool).await)?;
    let mut out = Vec::new();
    for (booking, notices) in rows {
        if notices > 1 || (settled && notices == 0) {
            out.push(format!("booking {booking}: {notices} confirmation notices"));
        }
    }
    Ok(out)
}
