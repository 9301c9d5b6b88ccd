//! Database outages during a sale (PostgreSQL only: it is the one that can refuse connections
//! while running). The database refuses new connections for ten seconds and every open one is
//! terminated: requests answer 503 with `Retry-After` (never 500), every 201 stays, a payment's
//! success stored before the outage still confirms its booking, and the invariants hold after.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    bookings::{book, bookable_event, items},
    helpers::{spawn_with, TestApp},
};

/// The admin connection URL and the test database's name, on PostgreSQL.
fn postgres(app: &TestApp) -> Option<(String, String)> {
    let admin = std::env::var("TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
    let db = match &app.app.db {
        tg_platform::db::Db::Postgres(pool) => pool.connect_options().get_database()?.to_owned(),
        tg_platform::db::Db::Sqlite(_) => return None,
    };
    Some((admin, db))
}

async fn admin_sql(admin_url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("admin connection");
    sqlx::query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// What the buyers saw: 201 booking ids, and answers that break the rules.
#[derive(Default)]
struct Seen {
    created: Vec<String>,
    unavailable: usize,
    wrong: Vec<String>,
}

#[tokio::test]
async fn a_database_outage_answers_503_and_loses_nothing() {
    let app = spawn_with(|s| {
        s.payments_reconcile_after_secs = Some(1);
        s.database_max_connections = Some(8);
    })
    .await;
    let Some((admin_url, db_name)) = postgres(&app) else {
        eprintln!("SKIPPED: the database outage test needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    };
    bookable_event(&app, 1, 10).await;

    // A paid booking whose success is stored just before the outage starts.
    let (_, payer) = app.user_with(&[]).await;
    let res = book(&app, &payer, "paid", &items("test-event-1", &[("vip", 2)])).await;
    let paid_booking: Value = res.json().await.unwrap();
    let paid_booking = paid_booking["id"].as_str().unwrap().to_owned();
    let body = json!({"booking_id": paid_booking, "provider": "sandbox"});
    let res = app.http.post(app.url("/api/v1/payments")).bearer_auth(&payer).header("idempotency-key", "p").json(&body);
    let payment: Value = res.send().await.unwrap().json().await.unwrap();

    // Buyers holding tickets throughout.
    let mut buyers = Vec::new();
    for _ in 0..12 {
        buyers.push(app.user_with(&[]).await.1);
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (b, token) in buyers.into_iter().enumerate() {
        let (http, url, seen, stop) = (app.http.clone(), app.url("/api/v1/bookings"), seen.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 4 {
                let key = format!("b{b}-{n}");
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", &key)
                    .json(&items("test-event-1", &[("standard", 1)]))
                    .send()
                    .await;
                let Ok(res) = res else { continue };
                let status = res.status();
                let retry_after = res.headers().get("retry-after").is_some();
                let body: Value = res.json().await.unwrap_or_default();
                {
                    let mut s = seen.lock().unwrap();
                    match status {
                        StatusCode::CREATED => {
                            s.created.push(body["id"].as_str().unwrap_or_default().to_owned());
                            n += 1;
                        }
                        StatusCode::SERVICE_UNAVAILABLE if retry_after => s.unavailable += 1,
                        other => s.wrong.push(format!("{other}: {body}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let webhook = app.sandbox_reports("payment.succeeded", payment["id"].as_str().unwrap(), 20000).await;
    assert_eq!(webhook.status(), StatusCode::OK);
    // The outage: no new connections for ten seconds, every open one terminated.
    admin_sql(&admin_url, &format!("ALTER DATABASE {db_name} ALLOW_CONNECTIONS false")).await;
    admin_sql(
        &admin_url,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"),
    )
    .await;
    let outage = Instant::now();
    // Meanwhile the API answers 503 with Retry-After (with no connection left, nothing else).
    let res = app.get("/api/v1/bookings/none-such", Some(&payer)).await;
    let status = res.status();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.text().await.unwrap());
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    admin_sql(&admin_url, &format!("ALTER DATABASE {db_name} ALLOW_CONNECTIONS true")).await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(seen.wrong.is_empty(), "answers other than 201 or 503 + Retry-After: {:?}", seen.wrong);
    assert!(seen.unavailable > 0, "the outage was seen by the buyers");
    assert!(!seen.created.is_empty());

    // Every 201 is there; the paid booking is confirmed; nothing dead-lettered; invariants hold.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let violations = ticketgw::invariants::check(&app.app.db, true).await.unwrap();
        let status = app.app.bookings.find(&paid_booking).await.unwrap().map(|b| b.status);
        if violations.is_empty() && status.as_deref() == Some("confirmed") {
            break;
        }
        assert!(Instant::now() < deadline, "after the outage: {status:?}, {violations:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for id in &seen.created {
        assert!(app.app.bookings.find(id).await.unwrap().is_some(), "201 booking {id} lost");
    }
    let dead = tg_messaging::dead_letters::count(&app.app.db).await.unwrap();
    assert_eq!(dead, 0, "nothing is dead-lettered by an outage");
}
