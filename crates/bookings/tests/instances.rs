//! Several instances on one database (SQLite by default, PostgreSQL with `TEST_DATABASE_URL`): two
//! sweepers expire the same holds at once, two instances create an event's ticket key at once.

use std::sync::Arc;

use tg_bookings::{
    store::{Release, Store},
    tickets::{TicketClaims, TicketKeys},
};
use tg_platform::{
    clock::now_ms,
    db::Db,
    testing::{fresh_db, TestDb},
    with_db,
};

async fn test_db() -> TestDb {
    fresh_db(vec![tg_messaging::migrations(), tg_bookings::migrations()], 4).await.unwrap()
}

async fn exec(db: &Db, sql: &str) {
    with_db!(db, pool => sqlx::query(sql).execute(pool).await.map(|_| ())).unwrap();
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    with_db!(db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await).unwrap()
}

/// What `BookingsService::expire_due` does, on one instance's store.
async fn sweep(store: &Store) -> usize {
    let mut n = 0;
    loop {
        let due = store.due_holds(now_ms(), 200).await.unwrap();
        if due.is_empty() {
            return n;
        }
        for id in due {
            if store.release(&id, Release::Expire, None).await.unwrap().is_some() {
                n += 1;
            }
        }
    }
}

/// 120 holds, all due, of ten users; two instances sweep at once. Each hold is expired once: its
/// seats come back once (the counters never go below zero), one `booking.expired` each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sweepers_expire_each_hold_once() {
    let test = test_db().await;
    let db = &test.db;
    let holds = 120;
    exec(db, &format!("INSERT INTO bookings_inventory (event_id, type_id, quantity, held) VALUES ('e1', 'standard', 500, {holds})")).await;
    exec(db, &format!("INSERT INTO bookings_event_totals (event_id, capacity, held) VALUES ('e1', 500, {holds})"))
        .await;
    for u in 0..10 {
        exec(
            db,
            &format!(
                "INSERT INTO bookings_user_counts (event_id, user_id, tickets) VALUES ('e1', 'u{u}', {})",
                holds / 10
            ),
        )
        .await;
    }
    let past = now_ms() - 1000;
    for i in 0..holds {
        exec(db, &format!(
            "INSERT INTO bookings_bookings (id, user_id, event_id, status, amount_cents, currency, expires_at, idempotency_key,
                request_hash, created_at, updated_at)
             VALUES ('b{i}', 'u{}', 'e1', 'pending_payment', 1000, 'USD', {past}, 'k{i}', 'h', {past}, {past})", i % 10)).await;
        exec(
            db,
            &format!(
                "INSERT INTO bookings_items (booking_id, type_id, quantity, unit_price_cents, refundable)
             VALUES ('b{i}', 'standard', 1, 1000, TRUE)"
            ),
        )
        .await;
    }

    let a = Store { db: test.connect_again(4).await.unwrap() };
    let b = Store { db: test.connect_again(4).await.unwrap() };
    let (na, nb) = tokio::join!(sweep(&a), sweep(&b));
    assert_eq!(na + nb, holds, "each hold expired by one sweeper ({na} + {nb})");
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM bookings_bookings WHERE status = 'expired'").await, holds as i64);
    assert_eq!(scalar(db, "SELECT held FROM bookings_inventory").await, 0);
    assert_eq!(scalar(db, "SELECT held FROM bookings_event_totals").await, 0);
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM bookings_user_counts WHERE tickets <> 0").await, 0);
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM messaging_outbox WHERE routing_key = 'booking.expired'").await,
        holds as i64,
        "one message per hold"
    );
    assert_eq!(scalar(db, "SELECT COUNT(DISTINCT booking_id) FROM bookings_audit_log").await, holds as i64);
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM bookings_audit_log").await, holds as i64);
}

fn claims(event: &str) -> TicketClaims {
    TicketClaims { tid: "t1".into(), eid: event.into(), tt: "standard".into(), code: "ABCDEFGHJK".into(), iat: 0 }
}

/// Two instances sign the first tickets of the same events at the same moment: one key per event
/// is kept, both sign with it, and each verifies the other's tickets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_creating_an_events_ticket_key_at_once_share_one() {
    let test = test_db().await;
    let a = Arc::new(TicketKeys::new(test.connect_again(4).await.unwrap()));
    let b = Arc::new(TicketKeys::new(test.connect_again(4).await.unwrap()));
    for e in 0..20 {
        let event = format!("e{e}");
        let c = claims(&event);
        let (ta, tb) = tokio::join!(a.sign(&c), b.sign(&c));
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
        assert_eq!(kid(&ta), kid(&tb), "one key for {event}");
        assert_eq!(a.verify(&tb).await.unwrap(), Some(claims(&event)));
        assert_eq!(b.verify(&ta).await.unwrap(), Some(claims(&event)));
        assert_eq!(a.public_jwks(&event).await.unwrap(), b.public_jwks(&event).await.unwrap());
    }
    assert_eq!(scalar(&test.db, "SELECT COUNT(*) FROM bookings_event_keys").await, 20);
}
