//! Several instances on one database (SQLite by default, PostgreSQL with `TEST_DATABASE_URL`): their
//! relays share the outbox and every message is delivered exactly once, in process and through
//! RabbitMQ; the claim of a relay that died runs out, one that failed is let go at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus::Registry;
use tg_messaging::{Consumer, Messaging, MessagingConfig, OutboxWrite};
use tg_platform::{
    bus::{Bus, DomainEvent},
    clock::now_ms,
    db::Db,
    testing::{fresh_db, TestDb},
    with_db, with_tx,
};

/// Counts, per message id, how often any instance handed it the message, and keeps the order.
#[derive(Default)]
struct Counting {
    handed: Mutex<HashMap<String, u32>>,
    order: Mutex<Vec<String>>,
}

impl Counting {
    fn total(&self) -> u32 {
        self.handed.lock().unwrap().values().sum()
    }

    fn order(&self) -> Vec<String> {
        self.order.lock().unwrap().clone()
    }

    /// Every id of `ids` handed exactly once, and nothing else.
    fn assert_exactly_once(&self, ids: &[String]) {
        let handed = self.handed.lock().unwrap();
        let twice: Vec<(&String, &u32)> = handed.iter().filter(|(_, n)| **n != 1).collect();
        assert!(
            twice.is_empty(),
            "{} messages handed more than once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        );
        let missing: Vec<&String> = ids.iter().filter(|id| !handed.contains_key(*id)).collect();
        assert!(missing.is_empty(), "{} messages never handed", missing.len());
        assert_eq!(handed.len(), ids.len(), "only the enqueued messages");
    }
}

/// The consumer as one instance has it (the counts are shared by all).
struct Recorder(Arc<Counting>);

#[async_trait::async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn bindings(&self) -> &'static [&'static str] {
        &["test.#"]
    }

    async fn handle(&self, m: &DomainEvent) -> anyhow::Result<()> {
        *self.0.handed.lock().unwrap().entry(m.id.clone()).or_default() += 1;
        self.0.order.lock().unwrap().push(m.id.clone());
        // A consumer takes a moment (its own transaction), which gives other relays time to race.
        tokio::time::sleep(Duration::from_micros(200)).await;
        Ok(())
    }
}

/// One running instance: its own pool, bus and metrics, as a separate process has.
struct Instance {
    bus: Bus,
    registry: Registry,
    messaging: Messaging,
}

impl Drop for Instance {
    fn drop(&mut self) {
        for t in &self.messaging.tasks {
            t.abort();
        }
    }
}

impl Instance {
    fn metric(&self, name: &str) -> f64 {
        let families = self.registry.gather();
        let family = families.iter().find(|f| f.name() == name).unwrap_or_else(|| panic!("no metric {name}"));
        family.get_metric().iter().map(|m| m.get_counter().get_value() + m.get_gauge().get_value()).sum()
    }
}

async fn start(test: &TestDb, counts: &Arc<Counting>, amqp: Option<(&str, &str)>) -> Instance {
    let db = test.connect_again(4).await.unwrap();
    let bus = Bus::new();
    let registry = Registry::new();
    // Only what the test sets; the rest as deployed.
    let mut config = MessagingConfig { poll: Duration::from_millis(50), ..Default::default() };
    if let Some((url, prefix)) = amqp {
        config.amqp_url = Some(url.to_owned());
        config.amqp_prefix = prefix.to_owned();
    }
    let consumers: Vec<Arc<dyn Consumer>> = vec![Arc::new(Recorder(counts.clone()))];
    let messaging = Messaging::start(db, bus.clone(), consumers, config, &registry).unwrap();
    Instance { bus, registry, messaging }
}

async fn write(db: &Db, events: &[DomainEvent]) -> sqlx::Result<()> {
    with_tx!(db, tx => tx.enqueue(events).await)
}

/// Enqueue `n` messages in transactions of 20, as services do; their ids in order.
async fn enqueue(db: &Db, n: usize, instances: &[Instance]) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
        let events: Vec<DomainEvent> =
            chunk.iter().map(|i| DomainEvent::new("test.happened", serde_json::json!({ "n": i }))).collect();
        write(db, &events).await.unwrap();
        ids.extend(events.into_iter().map(|e| e.id));
        for i in instances {
            i.bus.committed();
        }
    }
    ids
}

async fn outbox_len(db: &Db) -> i64 {
    with_db!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messaging_outbox").fetch_one(pool).await)
        .unwrap()
}

/// Waits until `expected` handings and an empty outbox, then a moment more for late duplicates.
async fn delivered(db: &Db, counts: &Counting, expected: u32, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while counts.total() < expected || outbox_len(db).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {expected} handed; {} rows still in the outbox",
            counts.total(),
            outbox_len(db).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn test_db() -> TestDb {
    fresh_db(vec![tg_messaging::migrations()], 4).await.unwrap()
}

/// Four instances' relays on one outbox, in process: some messages wait when they start, more come
/// while they run; each message reaches the consumer once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_relays_in_process_deliver_every_message_exactly_once() {
    let test = test_db().await;
    let counts = Arc::new(Counting::default());
    let mut ids = enqueue(&test.db, 200, &[]).await;
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(start(&test, &counts, None).await);
    }
    ids.extend(enqueue(&test.db, 200, &instances).await);
    delivered(&test.db, &counts, ids.len() as u32, 60).await;
    counts.assert_exactly_once(&ids);
    let relayed: f64 = instances.iter().map(|i| i.metric("messaging_relayed_total")).sum();
    assert_eq!(relayed, ids.len() as f64, "each message relayed by one relay");
}

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn broker_reachable() -> bool {
    let up = std::net::TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(1)).is_ok();
    if !up {
        // CI starts RabbitMQ and sets TG_REQUIRE_RABBITMQ, so there this test cannot be skipped.
        assert!(std::env::var_os("TG_REQUIRE_RABBITMQ").is_none(), "RabbitMQ is not running on 127.0.0.1:5672");
        eprintln!("SKIPPED: no RabbitMQ on 127.0.0.1:5672");
    }
    up
}

/// Remove a test's queues and exchanges from the broker.
async fn delete_topology(prefix: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(conn) = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default()).await else { return };
    let Ok(ch) = conn.create_channel().await else { return };
    let mut queues = vec![format!("{prefix}.recorder"), format!("{prefix}.dead-letter")];
    queues.extend(tg_messaging::RETRY_DELAYS.iter().map(|d| format!("{prefix}.recorder.retry-{}s", d.as_secs())));
    for q in queues {
        let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for x in [format!("{prefix}.events"), format!("{prefix}.dead-letter")] {
        let _ = ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = conn.close(0, "test done".into()).await;
}

/// The same through RabbitMQ: four relays publish (with confirms) and four consumer loops share the
/// consumer's queue; each message is published once, so it is handed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_relays_through_rabbitmq_publish_every_message_exactly_once() {
    if !broker_reachable() {
        return;
    }
    let test = test_db().await;
    let prefix = format!("tg-test-{}", uuid::Uuid::new_v4().simple());
    let counts = Arc::new(Counting::default());
    let mut ids = enqueue(&test.db, 200, &[]).await;
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(start(&test, &counts, Some((AMQP_URL, &prefix))).await);
    }
    ids.extend(enqueue(&test.db, 200, &instances).await);
    delivered(&test.db, &counts, ids.len() as u32, 60).await;
    drop(instances);
    delete_topology(&prefix).await;
    counts.assert_exactly_once(&ids);
}

/// Rows a relay claimed just before it died wait until the claim runs out, then another relay
/// delivers them; rows whose claim ran out already go at once, in order.
#[tokio::test]
async fn a_dead_relays_claim_runs_out_and_another_relay_delivers_its_rows() {
    let test = test_db().await;
    let counts = Arc::new(Counting::default());
    let ids = enqueue(&test.db, 20, &[]).await;
    let (expired, live) = ids.split_at(10);
    let now = now_ms();
    for (rows, until) in [(expired, now - 1), (live, now + 3_000)] {
        for id in rows {
            with_db!(&test.db, pool => sqlx::query(
                "UPDATE messaging_outbox SET claimed_by = 'dead-relay', claimed_until = $2 WHERE id = $1")
                .bind(id).bind(until).execute(pool).await.map(|_| ()))
            .unwrap();
        }
    }
    let _instance = start(&test, &counts, None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(counts.order(), expired, "only the rows whose claim ran out, in order");
    delivered(&test.db, &counts, ids.len() as u32, 20).await;
    counts.assert_exactly_once(&ids);
    assert_eq!(counts.order(), ids, "in order");
}

/// A relay that cannot deliver (its broker is unreachable) lets its claim go at once: another
/// instance delivers the rows long before the claim would have run out.
#[tokio::test]
async fn a_relay_that_fails_lets_its_claim_go() {
    let test = test_db().await;
    let counts = Arc::new(Counting::default());
    let ids = enqueue(&test.db, 50, &[]).await;
    // Nothing listens on port 1: every attempt of this relay fails.
    let broken = start(&test, &counts, Some(("amqp://guest:guest@127.0.0.1:1/%2f", "tg-nowhere"))).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while broken.metric("messaging_relay_errors_total") < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "the broken relay never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = tokio::time::Instant::now();
    let _healthy = start(&test, &counts, None).await;
    delivered(&test.db, &counts, ids.len() as u32, 20).await;
    assert!(started.elapsed() < Duration::from_secs(10), "waited for the failed relay's claim to run out");
    counts.assert_exactly_once(&ids);
    assert_eq!(broken.metric("messaging_relayed_total"), 0.0);
}

/// Two relays' retry passes take the same due `messaging_retries` rows at once: each row goes to
/// one of them (a conditional update moves its due time: the claim).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_retry_passes_claim_each_due_row_once() {
    let test = test_db().await;
    let now = now_ms();
    for i in 0..100 {
        let m = DomainEvent::new("test.happened", serde_json::json!({ "n": i }));
        tg_messaging::retries::schedule(&test.db, "recorder", &m, 1, now - 1, "failed").await.unwrap();
    }
    let (a, b) = (test.connect_again(4).await.unwrap(), test.connect_again(4).await.unwrap());
    let mut taken = Vec::new();
    for _ in 0..5 {
        let (ra, rb) = tokio::join!(tg_messaging::retries::claim_due(&a, 30), tg_messaging::retries::claim_due(&b, 30));
        taken.extend(ra.unwrap().into_iter().chain(rb.unwrap()).map(|r| r.message_id));
    }
    let unique: std::collections::HashSet<&String> = taken.iter().collect();
    assert_eq!(unique.len(), taken.len(), "a row claimed twice");
    assert_eq!(taken.len(), 100, "every due row claimed");
}
