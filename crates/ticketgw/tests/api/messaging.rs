//! Durable domain events: the outbox, in-process delivery with retries and dead letters, RabbitMQ
//! with the broker stopped while bookings are made, and dead letters replayed by an admin.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tg_messaging::{Consumer, OutboxWrite, Poison};
use tg_platform::{bus::DomainEvent, db::Db, with_tx};

use crate::{
    bookings::{book, bookable_event, items},
    helpers::{spawn_with_consumers, TestApp},
};

/// A consumer that records, per message id, how often it was handed the message and how often it
/// acted (at most once, guarded by `first_delivery` in its own transaction). While `poisoned`, it
/// refuses messages with `poison_key` as poison; it fails the first `flaky` messages it is handed
/// with an ordinary error (as when its database is away).
struct Recorder {
    name: &'static str,
    db: OnceLock<Db>,
    poison_key: Option<&'static str>,
    poisoned: AtomicBool,
    flaky: AtomicU32,
    seen: Mutex<HashMap<String, (String, u32, u32)>>,
}

impl Recorder {
    fn new(name: &'static str, poison_key: Option<&'static str>) -> Arc<Recorder> {
        Arc::new(Recorder {
            name,
            db: OnceLock::new(),
            poison_key,
            poisoned: AtomicBool::new(true),
            flaky: AtomicU32::new(0),
            seen: Mutex::default(),
        })
    }

    fn handed(&self, id: &str) -> u32 {
        self.seen.lock().unwrap().get(id).map(|(_, n, _)| *n).unwrap_or(0)
    }

    /// Acted-on message ids with `routing_key`, and whether any id was acted on more than once.
    fn acted(&self, routing_key: &str) -> (Vec<String>, bool) {
        let seen = self.seen.lock().unwrap();
        let ids = seen.iter().filter(|(_, (k, _, acted))| k == routing_key && *acted > 0).map(|(id, _)| id.clone());
        (ids.collect(), seen.values().any(|(_, _, acted)| *acted > 1))
    }
}

#[async_trait::async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn bindings(&self) -> &'static [&'static str] {
        &["booking.*", "user.registered"]
    }

    async fn handle(&self, m: &DomainEvent) -> anyhow::Result<()> {
        self.seen.lock().unwrap().entry(m.id.clone()).or_insert_with(|| (m.routing_key.clone(), 0, 0)).1 += 1;
        if self.poison_key == Some(m.routing_key.as_str()) && self.poisoned.load(Ordering::SeqCst) {
            return Err(Poison(format!("cannot digest {}", m.routing_key)).into());
        }
        if self.flaky.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            anyhow::bail!("database unavailable (simulated)");
        }
        let db = self.db.get().ok_or_else(|| anyhow::anyhow!("not wired yet"))?;
        let first = with_tx!(db, tx => tx.first_delivery(self.name, &m.id).await)?;
        if first {
            self.seen.lock().unwrap().get_mut(&m.id).expect("recorded above").2 += 1;
        }
        Ok(())
    }
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

async fn outbox_len(db: &Db) -> i64 {
    tg_platform::with_db!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messaging_outbox")
        .fetch_one(pool).await)
    .unwrap()
}

/// Waits until the relay has deleted every delivered row: it deletes after the broker's confirm,
/// which may come a moment after the consumers already acted.
async fn outbox_drained(db: &Db) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while outbox_len(db).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the outbox still holds {} rows", outbox_len(db).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Book `n` holds, four per buyer (the event's limit is five); their booking ids.
async fn book_many(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut buyer = String::new();
    for i in 0..n {
        if i % 4 == 0 {
            buyer = app.user_with(&[]).await.1;
        }
        let res = book(app, &buyer, &format!("k-{i}"), &items("test-event-1", &[("standard", 1)])).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
        ids.push(res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn cancel(app: &TestApp, booking_id: &str) {
    let owner: String = tg_platform::with_db!(&app.app.db, pool => sqlx::query_scalar(
        "SELECT user_id FROM bookings_bookings WHERE id = $1").bind(booking_id).fetch_one(pool).await)
    .unwrap();
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    let res = app.post(&format!("/api/v1/bookings/{booking_id}/cancel"), Some(&admin), &serde_json::json!({})).await;
    assert_eq!(res.status(), StatusCode::OK, "cancel of {owner}'s hold: {}", res.text().await.unwrap());
}

async fn dead_letters(app: &TestApp, admin: &str) -> Vec<(String, String)> {
    let res = app.get("/api/v1/admin/dead-letters", Some(admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(body["total"].as_u64(), Some(items.len() as u64));
    items.iter().map(|d| (d["consumer"].as_str().unwrap().into(), d["routing_key"].as_str().unwrap().into())).collect()
}

async fn wait_for_dead_letters(app: &TestApp, admin: &str, n: usize) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dead = dead_letters(app, admin).await;
        if dead.len() >= n || tokio::time::Instant::now() > deadline {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn in_process_delivery_retries_failures_and_dead_letters_only_poison() {
    let good = Recorder::new("recorder", None);
    // Its first three attempts fail as if its database were away.
    good.flaky.store(3, Ordering::SeqCst);
    let picky = Recorder::new("picky", Some("booking.cancelled"));
    let app = spawn_with_consumers(|_| {}, vec![good.clone(), picky.clone()]).await;
    let _ = good.db.set(app.app.db.clone());
    let _ = picky.db.set(app.app.db.clone());
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;

    bookable_event(&app, 1, 10).await;
    let bookings = book_many(&app, 5).await;
    cancel(&app, &bookings[0]).await;

    // Failures are retried until they succeed: every hold acted on once, none dead-lettered.
    wait_for("five booking.held messages", 30, || good.acted("booking.held").0.len() == 5).await;
    let (held, twice) = good.acted("booking.held");
    assert!(!twice, "a message was acted on twice");
    assert_eq!(held.len(), bookings.len());
    wait_for("the cancellation", 30, || good.acted("booking.cancelled").0.len() == 1).await;
    assert!(!good.acted("user.registered").0.is_empty());
    assert!(metric(&app, "messaging_consumer_retries_total{consumer=\"recorder\"}").await >= 3.0);

    // The picky consumer took the holds, and dead-lettered the poison cancellation at once.
    wait_for("the picky consumer's holds", 30, || picky.acted("booking.held").0.len() == 5).await;
    let dead = wait_for_dead_letters(&app, &admin, 1).await;
    assert_eq!(dead, vec![("picky".to_owned(), "booking.cancelled".to_owned())], "only poison is dead-lettered");
    let cancelled = picky.seen.lock().unwrap().iter().find(|(_, (k, ..))| k == "booking.cancelled").unwrap().0.clone();
    assert_eq!(picky.handed(&cancelled), 1, "poison is not retried");
    assert!(picky.acted("booking.cancelled").0.is_empty());
    outbox_drained(&app.app.db).await;
    for _ in 0..50 {
        if metric(&app, "messaging_dead_letters").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&app, "messaging_dead_letters").await, 1.0);
    assert!(metric(&app, "messaging_dead_lettered_total{consumer=\"picky\"}").await >= 1.0);
    assert!(metric(&app, "messaging_relayed_total").await >= 6.0);

    // Only admins see and replay dead letters; once the cause is fixed, a replay delivers it to
    // that consumer alone.
    let (_, user) = app.user_with(&[]).await;
    assert_eq!(app.get("/api/v1/admin/dead-letters", Some(&user)).await.status(), StatusCode::FORBIDDEN);
    let replay = format!("/api/v1/admin/dead-letters/picky/{cancelled}/replay");
    assert_eq!(app.post(&replay, Some(&user), &json!({})).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.post("/api/v1/admin/dead-letters/nobody/nothing/replay", Some(&admin), &json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    picky.poisoned.store(false, Ordering::SeqCst);
    let res = app.post(&replay, Some(&admin), &json!({})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    wait_for("the replayed cancellation", 30, || picky.acted("booking.cancelled").0.len() == 1).await;
    assert!(dead_letters(&app, &admin).await.is_empty());
    assert_eq!(good.acted("booking.cancelled").0.len(), 1, "the replay went to the picky consumer only");
    let audit: Vec<(String, String, String)> = tg_platform::with_db!(&app.app.db, pool => sqlx::query_as(
        "SELECT action, consumer, message_id FROM messaging_audit_log").fetch_all(pool).await)
    .unwrap();
    assert_eq!(audit, vec![("dead_letter.replayed".to_owned(), "picky".to_owned(), cancelled.clone())]);
    assert_eq!(good.handed(&cancelled), 1);
}

/// Runs `rabbitmqctl`, panicking when it fails.
fn rabbitmqctl(args: &[&str]) {
    let out = std::process::Command::new("rabbitmqctl").args(args).output().expect("run rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Restarts the broker application when dropped, so a failing test leaves RabbitMQ running.
struct BrokerStopped;

impl BrokerStopped {
    fn stop() -> BrokerStopped {
        rabbitmqctl(&["stop_app"]);
        BrokerStopped
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Tests using RabbitMQ take turns: the outage test stops the broker.
pub static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn broker_reachable() -> bool {
    let up = std::net::TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(1)).is_ok();
    if !up {
        // CI starts RabbitMQ and sets TG_REQUIRE_RABBITMQ, so there this test cannot be skipped.
        assert!(std::env::var_os("TG_REQUIRE_RABBITMQ").is_none(), "RabbitMQ is not running on 127.0.0.1:5672");
        eprintln!("SKIPPED: no RabbitMQ on 127.0.0.1:5672");
    }
    up
}

#[tokio::test]
async fn rabbitmq_outage_loses_nothing_and_poison_goes_to_the_dead_letter_queue() {
    let _turn = BROKER.lock().await;
    if !broker_reachable() {
        return;
    }
    let prefix = format!("tg-test-{}", uuid::Uuid::new_v4().simple());
    let good = Recorder::new("recorder", None);
    let picky = Recorder::new("picky", Some("booking.cancelled"));
    let app = spawn_with_consumers(
        |s| {
            s.amqp_url = Some(AMQP_URL.into());
            s.amqp_prefix = Some(prefix.clone());
        },
        vec![good.clone(), picky.clone()],
    )
    .await;
    let _ = good.db.set(app.app.db.clone());
    let _ = picky.db.set(app.app.db.clone());

    bookable_event(&app, 1, 10).await;
    let before = book_many(&app, 3).await;
    wait_for("bookings before the outage", 30, || good.acted("booking.held").0.len() == 3).await;

    // Broker down: bookings still succeed; their messages wait in the outbox.
    let broker = BrokerStopped::stop();
    let during = book_many(&app, 20).await;
    cancel(&app, &during[0]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // 20 holds, 5 buyers and the admin who cancels registered, 1 cancellation.
    assert_eq!(outbox_len(&app.app.db).await, 27, "every message of the outage waits in the outbox");
    assert!(metric(&app, "messaging_outbox_pending").await >= 1.0);
    assert!(metric(&app, "messaging_relay_errors_total").await >= 1.0);
    assert_eq!(good.acted("booking.held").0.len(), 3);

    // Broker back: everything arrives, each consumer acts exactly once per message.
    drop(broker);
    wait_for("every message after the outage", 120, || good.acted("booking.held").0.len() == 23).await;
    wait_for("the picky consumer too", 60, || picky.acted("booking.held").0.len() == 23).await;
    let (held, twice) = good.acted("booking.held");
    assert!(!twice && !picky.acted("booking.held").1, "a message was acted on twice");
    assert_eq!(held.len(), before.len() + during.len());
    outbox_drained(&app.app.db).await;

    wait_for("the cancellation", 20, || good.acted("booking.cancelled").0.len() == 1).await;
    // The picky consumer's poison cancellation, and nothing else, is among the dead letters: the
    // holds were acted on, `event.published` (no consumer) was never sent.
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    let dead = wait_for_dead_letters(&app, &admin, 1).await;
    assert_eq!(dead, vec![("picky".to_owned(), "booking.cancelled".to_owned())]);
    assert!(metric(&app, "messaging_unconsumed_total").await >= 1.0, "event.published has no consumer");
    assert_eq!(metric(&app, "messaging_unroutable_total").await, 0.0);

    // Cured and replayed: delivered through the picky consumer's own queue.
    picky.poisoned.store(false, Ordering::SeqCst);
    let res = app.post("/api/v1/admin/dead-letters/replay", Some(&admin), &json!({"consumer": "picky"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["replayed"], 1);
    wait_for("the replayed cancellation", 30, || picky.acted("booking.cancelled").0.len() == 1).await;
    assert!(dead_letters(&app, &admin).await.is_empty());

    delete_queues(&prefix, &["recorder", "picky", "payments", "notifications", "dead-letter"]);
}

/// A consumer failing while its database is away is retried through the delay queues until it
/// succeeds; nothing is dead-lettered.
#[tokio::test]
async fn rabbitmq_consumer_failures_are_retried_through_delay_queues() {
    let _turn = BROKER.lock().await;
    if !broker_reachable() {
        return;
    }
    let prefix = format!("tg-test-{}", uuid::Uuid::new_v4().simple());
    let flaky = Recorder::new("flaky", None);
    // Every message fails twice (1 s, then 5 s in the delay queues) before it is acted on.
    flaky.flaky.store(8, Ordering::SeqCst);
    let app = spawn_with_consumers(
        |s| {
            s.amqp_url = Some(AMQP_URL.into());
            s.amqp_prefix = Some(prefix.clone());
        },
        vec![flaky.clone()],
    )
    .await;
    let _ = flaky.db.set(app.app.db.clone());
    bookable_event(&app, 1, 10).await;
    book_many(&app, 4).await;
    wait_for("every hold despite the failures", 60, || flaky.acted("booking.held").0.len() == 4).await;
    assert!(!flaky.acted("booking.held").1, "a message was acted on twice");
    assert!(metric(&app, "messaging_consumer_retries_total{consumer=\"flaky\"}").await >= 8.0);
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    assert!(dead_letters(&app, &admin).await.is_empty());
    delete_queues(&prefix, &["flaky", "payments", "notifications", "dead-letter"]);
}

/// Remove a test's queues (and their delay queues) from the broker.
pub fn delete_queues(prefix: &str, names: &[&str]) {
    for q in names {
        let mut queues = vec![format!("{prefix}.{q}")];
        queues.extend(tg_messaging::RETRY_DELAYS.iter().map(|d| format!("{prefix}.{q}.retry-{}s", d.as_secs())));
        for queue in queues {
            let _ = std::process::Command::new("rabbitmqctl").args(["delete_queue", &queue]).output();
        }
    }
}

/// Holds publish `booking.held`, which no consumer takes: with RabbitMQ it is not sent at all, so the
/// broker returns nothing (no warning per hold in the logs) and nothing reaches the dead letters.
#[tokio::test]
async fn rabbitmq_messages_no_one_consumes_are_not_sent() {
    let _turn = BROKER.lock().await;
    if !broker_reachable() {
        return;
    }
    let prefix = format!("tg-test-{}", uuid::Uuid::new_v4().simple());
    let app = spawn_with_consumers(
        |s| {
            s.amqp_url = Some(AMQP_URL.into());
            s.amqp_prefix = Some(prefix.clone());
        },
        Vec::new(),
    )
    .await;
    bookable_event(&app, 1, 10).await;
    book_many(&app, 8).await;
    outbox_drained(&app.app.db).await;
    // Eight holds and the event's publication, none with a consumer.
    assert!(metric(&app, "messaging_unconsumed_total").await >= 9.0);
    assert_eq!(metric(&app, "messaging_unroutable_total").await, 0.0);
    // user.registered goes to the notifications queue, so the relay did publish meanwhile.
    assert!(metric(&app, "messaging_relayed_total").await >= 11.0);
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(dead_letters(&app, &admin).await.is_empty());
    assert_eq!(metric(&app, "messaging_dead_letters").await, 0.0);
    delete_queues(&prefix, &["payments", "notifications", "dead-letter"]);
}
