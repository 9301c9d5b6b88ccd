//! Durable domain events: the outbox, in-process delivery with dead letters, and RabbitMQ with the
//! broker stopped while bookings are made.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use reqwest::StatusCode;
use tg_messaging::{Consumer, OutboxWrite};
use tg_platform::{bus::DomainEvent, db::Db, with_tx};

use crate::{
    bookings::{book, bookable_event, items},
    helpers::{spawn_with_consumers, TestApp},
};

/// A consumer that records, per message id, how often it was handed the message and how often it
/// acted (at most once, guarded by `first_delivery` in its own transaction). It refuses messages
/// with `poison_key`.
struct Recorder {
    name: &'static str,
    db: OnceLock<Db>,
    poison_key: Option<&'static str>,
    seen: Mutex<HashMap<String, (String, u32, u32)>>,
}

impl Recorder {
    fn new(name: &'static str, poison_key: Option<&'static str>) -> Arc<Recorder> {
        Arc::new(Recorder { name, db: OnceLock::new(), poison_key, seen: Mutex::default() })
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
        if self.poison_key == Some(m.routing_key.as_str()) {
            anyhow::bail!("cannot digest {}", m.routing_key);
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

#[tokio::test]
async fn in_process_delivery_is_exactly_once_per_consumer_and_dead_letters_poison() {
    let good = Recorder::new("recorder", None);
    let picky = Recorder::new("picky", Some("booking.cancelled"));
    let app = spawn_with_consumers(|_| {}, vec![good.clone(), picky.clone()]).await;
    let _ = good.db.set(app.app.db.clone());
    let _ = picky.db.set(app.app.db.clone());

    bookable_event(&app, 1, 10).await;
    let bookings = book_many(&app, 5).await;
    cancel(&app, &bookings[0]).await;

    wait_for("five booking.held messages", 20, || good.acted("booking.held").0.len() == 5).await;
    let (held, twice) = good.acted("booking.held");
    assert!(!twice, "a message was acted on twice");
    assert_eq!(held.len(), bookings.len());
    wait_for("the cancellation", 20, || good.acted("booking.cancelled").0.len() == 1).await;
    assert!(!good.acted("user.registered").0.is_empty());
    // The picky consumer took the holds too, but dead-lettered the cancellation after its retries.
    wait_for("the dead letter", 20, || {
        picky.seen.lock().unwrap().values().any(|(k, n, _)| k == "booking.cancelled" && *n >= 4)
    })
    .await;
    assert_eq!(picky.acted("booking.held").0.len(), 5);
    assert!(picky.acted("booking.cancelled").0.is_empty());
    // The dead letter is written just after the last attempt fails.
    let mut dead: Vec<(String, String)> = Vec::new();
    for _ in 0..100 {
        dead = tg_platform::with_db!(&app.app.db, pool => sqlx::query_as(
            "SELECT consumer, routing_key FROM messaging_dead_letters").fetch_all(pool).await)
        .unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead, vec![("picky".to_owned(), "booking.cancelled".to_owned())]);
    // The outbox is drained and the figures are in /metrics.
    for _ in 0..100 {
        if outbox_len(&app.app.db).await == 0 && metric(&app, "messaging_dead_letters").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outbox_drained(&app.app.db).await;
    assert!(metric(&app, "messaging_dead_letters").await >= 1.0);
    assert!(metric(&app, "messaging_relayed_total").await >= 6.0);
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
    // The picky consumer's cancellation message went to the dead-letter queue.
    let mut dead = 0.0;
    for _ in 0..100 {
        dead = metric(&app, "messaging_dead_letters").await;
        if dead >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(dead >= 1.0, "dead-letter queue size in /metrics");

    delete_queues(&prefix, &["recorder", "picky", "payments", "notifications", "dead-letter"]);
}

/// Remove a test's queues from the broker.
pub fn delete_queues(prefix: &str, names: &[&str]) {
    for q in names {
        let _ = std::process::Command::new("rabbitmqctl").args(["delete_queue", &format!("{prefix}.{q}")]).output();
    }
}
