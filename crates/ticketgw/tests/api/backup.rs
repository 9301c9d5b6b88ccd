//! Backup and restore (PostgreSQL only: the procedure is `pg_dump`/`pg_restore`). A live database
//! with real state (paid bookings with tickets, one scanned at the door, a booking refunded in full,
//! a cancelled hold, seats still held) is dumped by `scripts/backup/backup.sh` while the server runs,
//! restored by `scripts/backup/restore.sh` into a fresh database, and compared row for row; the
//! invariants hold on the copy, and a server on the copy accepts the old tokens and shows the same
//! tickets. `restore.sh` refuses a non-empty database unless forced. A second dump taken while
//! buyers are holding seats restores to a consistent state (one snapshot).

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    bookings::{book, bookable_event, items},
    helpers::{spawn_with, TestApp},
    payments::paid,
};

const BACKUP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/backup/backup.sh");
const RESTORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/backup/restore.sh");

/// The tables whose rows must come back exactly: bookings, items, tickets, check-ins, counters,
/// payments, refunds, the users who own them and the events they are for.
const COMPARED: &[&str] = &["users_users", "users_signing_keys", "events_events"];
const COMPARED_PREFIXES: &[&str] = &["bookings_", "payments_"];

/// The server's URL without a database (from `TEST_DATABASE_URL`) and the app's database name.
fn postgres(app: &TestApp) -> Option<(String, String)> {
    let admin = std::env::var("TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
    let db = match &app.app.db {
        tg_platform::db::Db::Postgres(pool) => pool.connect_options().get_database()?.to_owned(),
        tg_platform::db::Db::Sqlite(_) => return None,
    };
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
    Some((base, db))
}

async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Every row of `table` as PostgreSQL's text of the whole row, sorted.
async fn rows(conn: &mut sqlx::PgConnection, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY 1")).fetch_all(conn).await.unwrap()
}

async fn tables(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        .fetch_all(conn)
        .await
        .unwrap()
}

/// Run one of the backup scripts off the async runtime; (success, stdout, stderr).
async fn run(script: &'static str, args: Vec<String>) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || Command::new("bash").arg(script).args(&args).output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `backup.sh` of `url` into `dir`: the dump's path, checked to exist with its checksum.
async fn backup(url: &str, dir: &std::path::Path) -> String {
    let (ok, stdout, stderr) = run(BACKUP, vec![url.to_owned(), dir.display().to_string()]).await;
    assert!(ok, "backup.sh failed: {stderr}");
    let dump = stdout.lines().last().expect("backup.sh prints the dump's path").to_owned();
    let name = std::path::Path::new(&dump).file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.ends_with(".dump") && name.contains("-20"), "timestamped name: {name}");
    let sum = std::fs::read_to_string(format!("{dump}.sha256")).expect("checksum beside the dump");
    assert!(sum.trim_end().ends_with(&format!("  {name}")), "sha256sum format: {sum}");
    dump
}

/// Wait until every invariant holds with everything settled (payments, refunds, notices).
async fn settled(db: &tg_platform::db::Db) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let violations = ticketgw::invariants::check(db, true).await.unwrap();
        if violations.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "never settled: {violations:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Compare the restored database with the live one: the same tables, and the compared ones row for row.
async fn assert_same(live_url: &str, restored_url: &str) -> usize {
    let (mut live, mut restored) = (connect(live_url).await, connect(restored_url).await);
    let names = tables(&mut live).await;
    assert_eq!(names, tables(&mut restored).await, "the same tables");
    let mut compared = 0;
    for table in
        names.iter().filter(|t| COMPARED.contains(&t.as_str()) || COMPARED_PREFIXES.iter().any(|p| t.starts_with(p)))
    {
        let (a, b) = (rows(&mut live, table).await, rows(&mut restored, table).await);
        assert_eq!(a.len(), b.len(), "{table}: row count");
        assert_eq!(a, b, "{table}: rows differ");
        compared += a.len();
    }
    let versions = "SELECT version FROM _sqlx_migrations ORDER BY 1";
    let (a, b): (Vec<i64>, Vec<i64>) = (
        sqlx::query_scalar(versions).fetch_all(&mut live).await.unwrap(),
        sqlx::query_scalar(versions).fetch_all(&mut restored).await.unwrap(),
    );
    assert_eq!(a, b, "the same migrations");
    compared
}

async fn count(url: &str, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&mut connect(url).await).await.unwrap()
}

async fn drop_database(base: &str, name: &str) {
    let mut conn = connect(&format!("{base}/postgres")).await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
}

#[tokio::test]
async fn a_dump_of_a_live_database_restores_row_for_row() {
    let app = spawn_with(|_| {}).await;
    let Some((base, db_name)) = postgres(&app) else {
        eprintln!("SKIPPED: the backup and restore test needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    };
    let live_url = format!("{base}/{db_name}");
    let organizer = bookable_event(&app, 1, 10).await;

    // Two paid bookings with their tickets; one ticket scanned at the door.
    let (_, alice) = app.user_with(&[]).await;
    let hold: Value =
        book(&app, &alice, "a-1", &items("test-event-1", &[("vip", 2), ("standard", 1)])).await.json().await.unwrap();
    paid(&app, &alice, &hold).await;
    let (_, bob) = app.user_with(&[]).await;
    let hold: Value = book(&app, &bob, "b-1", &items("test-event-1", &[("standard", 2)])).await.json().await.unwrap();
    paid(&app, &bob, &hold).await;
    let alice_tickets: Value = app.get("/api/v1/me/tickets", Some(&alice)).await.json().await.unwrap();
    let token = alice_tickets["items"][0]["token"].as_str().unwrap();
    let scan =
        app.post("/api/v1/events/evt-t1/checkins", Some(&organizer), &json!({"token": token, "nonce": "door-1"})).await;
    assert_eq!(scan.json::<Value>().await.unwrap()["result"], "valid");

    // A booking paid and refunded in full (cancelled, seats back), a hold cancelled, seats still held.
    let (_, carol) = app.user_with(&[]).await;
    let hold: Value = book(&app, &carol, "c-1", &items("test-event-1", &[("vip", 2)])).await.json().await.unwrap();
    let refunded = paid(&app, &carol, &hold).await;
    let res = app.post(&format!("/api/v1/payments/{refunded}/refund"), Some(&carol), &json!({})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", res.text().await.unwrap());
    let (_, dave) = app.user_with(&[]).await;
    let hold: Value = book(&app, &dave, "d-1", &items("test-event-1", &[("standard", 1)])).await.json().await.unwrap();
    let res =
        app.post(&format!("/api/v1/bookings/{}/cancel", hold["id"].as_str().unwrap()), Some(&dave), &json!({})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let (_, erin) = app.user_with(&[]).await;
    let res = book(&app, &erin, "e-1", &items("test-event-1", &[("vip", 1), ("standard", 3)])).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    settled(&app.app.db).await;

    // The state the copy must have: every kind of row is there.
    let states = "SELECT string_agg(status, ',' ORDER BY status) FROM bookings_bookings";
    let expected_states: String = sqlx::query_scalar(states).fetch_one(&mut connect(&live_url).await).await.unwrap();
    assert_eq!(expected_states, "cancelled,cancelled,confirmed,confirmed,pending_payment");
    assert_eq!(count(&live_url, "SELECT COUNT(*) FROM bookings_tickets WHERE status = 'valid'").await, 5);
    assert_eq!(count(&live_url, "SELECT COUNT(*) FROM bookings_checkins").await, 1);
    assert_eq!(count(&live_url, "SELECT COUNT(*) FROM payments_refunds WHERE status = 'succeeded'").await, 1);
    assert_eq!(count(&live_url, "SELECT CAST(SUM(held) AS BIGINT) FROM bookings_inventory").await, 4);

    // Dump while the server runs; restore into a fresh database.
    let dir = std::env::temp_dir().join(format!("tg_backup_{}", uuid::Uuid::new_v4().simple()));
    let started = Instant::now();
    let dump = backup(&live_url, &dir).await;
    let restored_name = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    let restored_url = format!("{base}/{restored_name}");
    let (ok, _, stderr) = run(RESTORE, vec![dump.clone(), restored_url.clone()]).await;
    assert!(ok, "restore.sh failed: {stderr}");
    assert!(stderr.contains("created database"), "{stderr}");
    eprintln!("backup and restore took {:?}", started.elapsed());
    let compared = assert_same(&live_url, &restored_url).await;
    assert!(compared > 20, "compared {compared} rows");

    // A database with tables is refused; forced, it is replaced by the dump.
    let (ok, _, stderr) = run(RESTORE, vec![dump.clone(), restored_url.clone()]).await;
    assert!(!ok && stderr.contains("not empty"), "restoring over a non-empty database: {stderr}");
    let (ok, _, stderr) = run(RESTORE, vec!["--force".into(), dump.clone(), restored_url.clone()]).await;
    assert!(ok, "restore.sh --force failed: {stderr}");
    assert_same(&live_url, &restored_url).await;
    // A dump that does not match its checksum is not restored.
    let bad = format!("{dump}.bad");
    std::fs::copy(&dump, &bad).unwrap();
    std::fs::copy(format!("{dump}.sha256"), format!("{bad}.sha256")).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&bad)
        .map(|mut f| std::io::Write::write_all(&mut f, b"x"))
        .unwrap()
        .unwrap();
    let fresh_name = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    let (ok, _, stderr) = run(RESTORE, vec![bad, format!("{base}/{fresh_name}")]).await;
    assert!(!ok && stderr.contains("checksum"), "a corrupt dump: {stderr}");

    // A server on the copy (same public URL, so the same token issuer): the invariants hold, the
    // tokens issued before the backup work (the signing keys came back), the same tickets.
    let public_url = app.base.clone();
    let copy = spawn_with(|s| {
        s.database_url = Some(restored_url.clone());
        s.public_url = Some(public_url);
    })
    .await;
    let violations = ticketgw::invariants::check(&copy.app.db, true).await.unwrap();
    assert!(violations.is_empty(), "invariants on the restored database: {violations:#?}");
    let live: Value = app.get("/api/v1/me/tickets", Some(&alice)).await.json().await.unwrap();
    let res = copy.get("/api/v1/me/tickets", Some(&alice)).await;
    assert_eq!(res.status(), StatusCode::OK, "the old token on the restored server");
    let restored: Value = res.json().await.unwrap();
    assert_eq!(restored["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(restored["items"], live["items"], "the restored server shows the same tickets");

    // A dump taken while buyers hold seats (five each, the most one may) is one consistent snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for b in 0..8 {
        let (_, token) = app.user_with(&[]).await;
        let (http, url, stop) = (app.http.clone(), app.url("/api/v1/bookings"), stop.clone());
        load.push(tokio::spawn(async move {
            let mut created = 0;
            for n in 0..5 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", format!("load-{b}-{n}"))
                    .json(&items("test-event-1", &[("riel", 1)]))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
                created += 1;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            created
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy_dump = backup(&live_url, &dir).await;
    stop.store(true, Ordering::SeqCst);
    let mut created = 0;
    for task in load {
        created += task.await.unwrap();
    }
    let busy_name = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    let busy_url = format!("{base}/{busy_name}");
    let (ok, _, stderr) = run(RESTORE, vec![busy_dump, busy_url.clone()]).await;
    assert!(ok, "restore.sh of the busy dump failed: {stderr}");
    let busy_db = tg_platform::db::Db::connect(Some(&busy_url), std::path::Path::new("."), 2).await.unwrap();
    let violations = ticketgw::invariants::check(&busy_db, false).await.unwrap();
    assert!(violations.is_empty(), "invariants on the dump taken under load: {violations:#?}");
    let held = count(&busy_url, "SELECT COUNT(*) FROM bookings_bookings WHERE status = 'pending_payment'").await;
    assert!((1..=1 + created as i64).contains(&held), "{held} holds in the busy dump, {created} made");
    busy_db.close().await;

    drop(copy);
    let _ = std::fs::remove_dir_all(&dir);
    for name in [restored_name, busy_name, fresh_name] {
        drop_database(&base, &name).await;
    }
}
