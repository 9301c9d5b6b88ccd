//! The relay: takes messages out of the outbox in order and delivers them, to RabbitMQ or to the
//! in-process consumers; rows are deleted only after delivery, so a crash or an outage re-delivers
//! (at least once) and never loses. It also gives due `messaging_retries` rows to their consumer.
//!
//! Several relays may share one outbox (several instances on one database): a relay first claims
//! its batch (a conditional update that sets `claimed_by` and `claimed_until`), renews the claim
//! while it delivers, and no relay takes rows another one holds, so no row is sent twice. When a
//! delivery fails the relay lets its claim go; when a relay dies its claim runs out ([`CLAIM`]) and
//! another relay takes the rows. In process, every instance must run the same consumers: a message
//! goes to the consumers of the instance whose relay claimed it.

use std::{sync::Arc, time::Duration};
use tracing::Instrument;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tg_platform::{
    bus::{Bus, DomainEvent},
    clock::now_ms,
    db::Db,
    failpoint::crash_point,
    telemetry::Bounded,
    with_db,
};
use tokio::task::JoinHandle;

use crate::{
    amqp::{self, Names, Publisher},
    dead_letters, is_poison, retries, retry_delay, topic_matches, Consumer,
};

#[derive(Clone, Debug)]
pub struct MessagingConfig {
    /// RabbitMQ URL; `None` delivers in process.
    pub amqp_url: Option<String>,
    /// Prefix of exchange and queue names.
    pub amqp_prefix: String,
    /// How often the relay looks at the outbox when nobody woke it.
    pub poll: Duration,
    /// Consumers running in other processes (services apart): the relay publishes what they
    /// subscribe to and declares their queues, so nothing is lost before they first start.
    pub subscriptions: Vec<Subscription>,
    /// Move the broker's dead letters into this database (RabbitMQ only). One place per platform:
    /// the monolith, or the admin service, whose API lists and replays them.
    pub archive_dead_letters: bool,
}

/// A consumer by name and bindings, as the broker's topology needs it.
#[derive(Clone, Copy, Debug)]
pub struct Subscription {
    pub name: &'static str,
    pub bindings: &'static [&'static str],
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            amqp_url: None,
            amqp_prefix: "ticketgw".into(),
            poll: Duration::from_secs(1),
            subscriptions: Vec::new(),
            archive_dead_letters: true,
        }
    }
}

/// Messages taken from the outbox in one go.
const RELAY_BATCH: i64 = 500;

/// How long a relay's claim on its batch lasts without renewal: how long the rows of a relay that
/// died wait before another relay takes them.
const CLAIM: Duration = Duration::from_secs(15);

/// How often a relay renews the claim on the batch it is delivering.
const RENEW_CLAIM_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Gauges {
    pending: IntGauge,
    oldest_age: IntGauge,
    dead_letters: IntGauge,
    retries_waiting: IntGauge,
    relayed: IntCounter,
    relay_errors: IntCounter,
    unroutable: IntCounter,
    unconsumed: IntCounter,
    counters: Counters,
}

/// Per-consumer counts of failures, shared with the RabbitMQ consumer loops.
#[derive(Clone)]
pub struct Counters {
    retries: IntCounterVec,
    dead_lettered: IntCounterVec,
}

impl Counters {
    pub fn retried(&self, consumer: &str) {
        self.retries.with_label_values(&[consumer]).inc();
    }

    pub fn dead_lettered(&self, consumer: &str) {
        self.dead_lettered.with_label_values(&[consumer]).inc();
    }
}

impl Gauges {
    fn register(registry: &Registry) -> anyhow::Result<Self> {
        let g = Gauges {
            pending: IntGauge::with_opts(Opts::new(
                "messaging_outbox_pending",
                "Messages in the outbox not yet relayed",
            ))?,
            oldest_age: IntGauge::with_opts(Opts::new(
                "messaging_outbox_lag_seconds",
                "Age of the oldest message waiting in the outbox",
            ))?,
            dead_letters: IntGauge::with_opts(Opts::new(
                "messaging_dead_letters",
                "Messages in the dead-letter queue (RabbitMQ) or table (in process)",
            ))?,
            relayed: IntCounter::with_opts(Opts::new("messaging_relayed_total", "Messages relayed from the outbox"))?,
            relay_errors: IntCounter::with_opts(Opts::new(
                "messaging_relay_errors_total",
                "Relay attempts that failed (broker unreachable, refused)",
            ))?,
            unroutable: IntCounter::with_opts(Opts::new(
                "messaging_unroutable_total",
                "Messages the broker returned (no queue bound although a consumer subscribes), dead-lettered",
            ))?,
            unconsumed: IntCounter::with_opts(Opts::new(
                "messaging_unconsumed_total",
                "Messages no consumer subscribes to, taken out of the outbox without being sent",
            ))?,
            retries_waiting: IntGauge::with_opts(Opts::new(
                "messaging_retries_waiting",
                "Messages waiting in messaging_retries for another attempt (in process) or a replay",
            ))?,
            counters: Counters {
                retries: IntCounterVec::new(
                    Opts::new("messaging_consumer_retries_total", "Failed attempts of a consumer that will be retried"),
                    &["consumer"],
                )?,
                dead_lettered: IntCounterVec::new(
                    Opts::new("messaging_dead_lettered_total", "Poison messages a consumer dead-lettered"),
                    &["consumer"],
                )?,
            },
        };
        for m in [&g.pending, &g.oldest_age, &g.dead_letters, &g.retries_waiting] {
            registry.register(Box::new(m.clone()))?;
        }
        for m in [&g.relayed, &g.relay_errors, &g.unroutable, &g.unconsumed] {
            registry.register(Box::new(m.clone()))?;
        }
        registry.register(Box::new(g.counters.retries.clone()))?;
        registry.register(Box::new(g.counters.dead_lettered.clone()))?;
        Ok(g)
    }
}

/// The running messaging part: relay plus (with RabbitMQ) one consuming task per consumer.
pub struct Messaging {
    pub tasks: Vec<JoinHandle<()>>,
}

impl Messaging {
    pub fn start(
        db: Db,
        bus: Bus,
        consumers: Vec<Arc<dyn Consumer>>,
        config: MessagingConfig,
        registry: &Registry,
    ) -> anyhow::Result<Messaging> {
        let gauges = Gauges::register(registry)?;
        // Every consumer's series exist from the start, so rates and alerts see zeros, not nothing.
        for c in &consumers {
            gauges.counters.retries.with_label_values(&[c.name()]);
            gauges.counters.dead_lettered.with_label_values(&[c.name()]);
        }
        let names = Names::new(&config.amqp_prefix);
        let mut tasks = Vec::new();
        if let Some(url) = &config.amqp_url {
            for c in &consumers {
                let counters = gauges.counters.clone();
                tasks.push(tokio::spawn(amqp::run_consumer(url.clone(), names.clone(), c.clone(), counters)));
            }
            if config.archive_dead_letters {
                tasks.push(tokio::spawn(amqp::run_archiver(url.clone(), names.clone(), db.clone())));
            }
        }
        let id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let relay = Relay { db, bus, consumers, config, names, gauges, publisher: None, id };
        tasks.push(tokio::spawn(relay.run()));
        Ok(Messaging { tasks })
    }
}

struct Relay {
    db: Db,
    bus: Bus,
    consumers: Vec<Arc<dyn Consumer>>,
    config: MessagingConfig,
    names: Names,
    gauges: Gauges,
    publisher: Option<Publisher>,
    /// Names this relay's claims on outbox rows.
    id: String,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    seq: i64,
    id: String,
    routing_key: String,
    occurred_at: String,
    payload: String,
    trace_parent: Option<String>,
}

impl Relay {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut last_gauges = std::time::Instant::now() - Duration::from_secs(10);
        loop {
            if last_gauges.elapsed() >= Duration::from_secs(1) {
                last_gauges = std::time::Instant::now();
                if let Err(e) = self.update_gauges().await {
                    tracing::debug!(error = %e, "messaging gauges not updated");
                }
            }
            if let Err(e) = self.retry_once().await {
                tracing::warn!(error = %Bounded(&e), "retry pass failed; rows stay for the next");
                // It may have failed on a broken broker channel: the next pass connects anew.
                self.publisher = None;
            }
            match self.relay_once().await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    let _ = tokio::time::timeout(self.config.poll, self.bus.next_commit()).await;
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    self.gauges.relay_errors.inc();
                    tracing::warn!(error = %Bounded(&e), retry_in_ms = backoff.as_millis() as u64, "relay failed; messages stay in the outbox");
                    self.publisher = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Deliver one batch; the number of messages delivered.
    async fn relay_once(&mut self) -> anyhow::Result<usize> {
        let rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let messages: Vec<DomainEvent> = rows
            .iter()
            .map(|r| DomainEvent {
                id: r.id.clone(),
                routing_key: r.routing_key.clone(),
                occurred_at: r.occurred_at.clone(),
                // Written by `enqueue` from a JSON value; an unreadable one is kept as a string, not dropped.
                payload: serde_json::from_str(&r.payload)
                    .unwrap_or_else(|_| serde_json::Value::String(r.payload.clone())),
                trace_parent: r.trace_parent.clone(),
            })
            .collect();
        let (db, id) = (self.db.clone(), self.id.clone());
        let span = tracing::info_span!("relay", messages = messages.len());
        if let Err(e) = holding_claim(&db, &id, self.deliver(&messages)).instrument(span).await {
            // Let other relays (and the next attempt of this one) take the rows at once.
            if let Err(release) = release_claim(&db, &id).await {
                tracing::debug!(error = %release, "outbox claim not released; it runs out");
            }
            return Err(e);
        }
        crash_point("messaging.relay.delivered");
        // Delete exactly the delivered rows: one fixed statement over an array on PostgreSQL (planned
        // once); on SQLite a list of our own integers.
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        match &self.db {
            Db::Postgres(pool) => {
                sqlx::query("DELETE FROM messaging_outbox WHERE seq = ANY($1)").bind(&seqs).execute(pool).await?;
            }
            Db::Sqlite(pool) => {
                for chunk in seqs.chunks(1000) {
                    let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                    sqlx::query(&format!("DELETE FROM messaging_outbox WHERE seq IN ({list})")).execute(pool).await?;
                }
            }
        }
        self.gauges.relayed.inc_by(messages.len() as u64);
        for m in &messages {
            self.bus.delivered(m);
        }
        Ok(messages.len())
    }

    /// Claim the next batch: the oldest rows no other relay holds (unclaimed, claim run out, or
    /// claimed by this relay before a failure), in order. The claim condition is in the outer
    /// `WHERE` too: on PostgreSQL a row another relay claimed meanwhile is re-checked there and left
    /// out (and `SKIP LOCKED` lets concurrent relays pick different rows instead of waiting);
    /// SQLite runs the statement under its single write lock.
    async fn claim(&self) -> anyhow::Result<Vec<OutboxRow>> {
        const FREE: &str = "(claimed_until <= $3 OR claimed_by = $1)";
        let lock = match self.db {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE messaging_outbox SET claimed_by = $1, claimed_until = $2
             WHERE seq IN (SELECT seq FROM messaging_outbox WHERE {FREE} ORDER BY seq LIMIT $4{lock}) AND {FREE}
             RETURNING seq, id, routing_key, occurred_at, payload, trace_parent"
        );
        let now = now_ms();
        let mut rows: Vec<OutboxRow> = with_db!(&self.db, pool => sqlx::query_as(&sql)
            .bind(&self.id).bind(now + CLAIM.as_millis() as i64).bind(now).bind(RELAY_BATCH)
            .fetch_all(pool).await)?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Hand `messages` (in order) to RabbitMQ or to the in-process consumers.
    async fn deliver(&mut self, messages: &[DomainEvent]) -> anyhow::Result<()> {
        match self.config.amqp_url.clone() {
            Some(url) => {
                // A message nobody subscribes to is not sent: the broker would return it, and it is
                // no failure to keep among the dead letters.
                let (wanted, unwanted): (Vec<DomainEvent>, Vec<DomainEvent>) =
                    messages.iter().cloned().partition(|m| self.subscribed(&m.routing_key));
                self.gauges.unconsumed.inc_by(unwanted.len() as u64);
                if !wanted.is_empty() {
                    let publisher = self.publisher(&url).await?;
                    let unroutable = publisher.publish(&wanted).await?;
                    self.gauges.unroutable.inc_by(unroutable);
                }
            }
            None => {
                for m in messages {
                    self.deliver_in_process(m).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether a consumer takes `routing_key`.
    fn subscribed(&self, routing_key: &str) -> bool {
        let local = self.consumers.iter().flat_map(|c| c.bindings().iter());
        let remote = self.config.subscriptions.iter().flat_map(|s| s.bindings.iter());
        local.chain(remote).any(|p| topic_matches(p, routing_key))
    }

    async fn publisher(&mut self, url: &str) -> anyhow::Result<&Publisher> {
        if self.publisher.is_none() {
            let mut subscriptions: Vec<Subscription> =
                self.consumers.iter().map(|c| Subscription { name: c.name(), bindings: c.bindings() }).collect();
            subscriptions.extend(self.config.subscriptions.iter().copied());
            self.publisher = Some(Publisher::connect(url, &self.names, &subscriptions).await?);
        }
        Ok(self.publisher.as_ref().expect("connected above"))
    }

    /// Hand `message` to each in-process consumer once; a failure is scheduled for a retry (or
    /// dead-lettered if poison) so that one failing consumer holds up no other message.
    async fn deliver_in_process(&self, message: &DomainEvent) -> anyhow::Result<()> {
        for c in &self.consumers {
            if !c.bindings().iter().any(|p| topic_matches(p, &message.routing_key)) {
                continue;
            }
            if let Err(error) = c.handle(message).instrument(crate::consume_span(c.name(), message)).await {
                self.failed(c.name(), message, 1, &error).await?;
            }
        }
        Ok(())
    }

    /// Consumer `consumer` failed at `message` for the `attempts`-th time: retry it later, or keep
    /// it as a dead letter when it is poison.
    async fn failed(
        &self,
        consumer: &str,
        message: &DomainEvent,
        attempts: u32,
        error: &anyhow::Error,
    ) -> anyhow::Result<()> {
        let text = Bounded(error).to_string();
        if is_poison(error) {
            tracing::error!(consumer, message_id = %message.id, error = %text, "poison message dead-lettered");
            let body = serde_json::to_string(message)?;
            dead_letters::record(&self.db, consumer, &message.id, &message.routing_key, &body, &text).await?;
            retries::done(&self.db, consumer, &message.id).await?;
            self.gauges.counters.dead_lettered(consumer);
        } else {
            let delay = retry_delay(attempts);
            tracing::warn!(consumer, message_id = %message.id, attempts, retry_in_s = delay.as_secs(), error = %text, "consumer failed; will retry");
            let at = now_ms() + delay.as_millis() as i64;
            retries::schedule(&self.db, consumer, message, attempts, at, &text).await?;
            self.gauges.counters.retried(consumer);
        }
        Ok(())
    }

    /// Give due `messaging_retries` rows to their consumer: in process, by handling them here;
    /// with RabbitMQ, by putting them into the consumer's queue.
    async fn retry_once(&mut self) -> anyhow::Result<()> {
        let due = retries::claim_due(&self.db, 100).await?;
        for row in due {
            let message: DomainEvent = match serde_json::from_str(&row.message) {
                Ok(m) => m,
                Err(e) => {
                    let why = format!("poison message: not a domain event: {e}");
                    dead_letters::record(&self.db, &row.consumer, &row.message_id, "", &row.message, &why).await?;
                    retries::done(&self.db, &row.consumer, &row.message_id).await?;
                    continue;
                }
            };
            let attempts = row.attempts.max(0) as u32;
            match self.config.amqp_url.clone() {
                Some(url) => {
                    self.publisher(&url).await?.send_to(&row.consumer, &message, attempts).await?;
                    retries::done(&self.db, &row.consumer, &row.message_id).await?;
                }
                None => {
                    // A consumer of another process (none in process mode): its row waits.
                    let Some(c) = self.consumers.iter().find(|c| c.name() == row.consumer).cloned() else { continue };
                    match c.handle(&message).instrument(crate::consume_span(c.name(), &message)).await {
                        Ok(()) => retries::done(&self.db, &row.consumer, &row.message_id).await?,
                        Err(error) => self.failed(c.name(), &message, attempts + 1, &error).await?,
                    }
                }
            }
        }
        Ok(())
    }

    async fn update_gauges(&self) -> anyhow::Result<()> {
        let (pending, oldest): (i64, Option<i64>) = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM messaging_outbox").fetch_one(pool).await)?;
        self.gauges.pending.set(pending);
        self.gauges.oldest_age.set(oldest.map(|t| ((now_ms() - t) / 1000).max(0)).unwrap_or(0));
        self.gauges.retries_waiting.set(retries::count(&self.db).await?);
        // Kept in the table; with RabbitMQ some may still wait in the queue to be moved there.
        let queued = match &self.publisher {
            Some(p) => i64::from(p.dead_letters().await.unwrap_or(0)),
            None => 0,
        };
        self.gauges.dead_letters.set(dead_letters::count(&self.db).await? + queued);
        Ok(())
    }
}

/// Run `work` while renewing relay `relay`'s claim on its rows every [`RENEW_CLAIM_EVERY`], so the
/// claim lasts as long as the delivery takes and runs out only when the relay is gone.
async fn holding_claim<T>(db: &Db, relay: &str, work: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(work);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_CLAIM_EVERY, RENEW_CLAIM_EVERY);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = renew.tick() => {
                let until = now_ms() + CLAIM.as_millis() as i64;
                let renewed = with_db!(db, pool => sqlx::query(
                    "UPDATE messaging_outbox SET claimed_until = $2 WHERE claimed_by = $1")
                    .bind(relay).bind(until).execute(pool).await.map(|_| ()));
                if let Err(e) = renewed {
                    // Should the claim run out, another relay may send the rows too (at least once).
                    tracing::warn!(error = %e, "outbox claim not renewed");
                }
            }
        }
    }
}

/// Give up relay `relay`'s claims (its delivery failed): the rows are free for any relay at once.
async fn release_claim(db: &Db, relay: &str) -> sqlx::Result<()> {
    with_db!(db, pool => sqlx::query(
        "UPDATE messaging_outbox SET claimed_by = NULL, claimed_until = 0 WHERE claimed_by = $1")
        .bind(relay).execute(pool).await.map(|_| ()))
}
