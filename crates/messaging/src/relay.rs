//! The relay: takes messages out of the outbox in order and delivers them, to RabbitMQ or to the
//! in-process consumers; rows are deleted only after delivery, so a crash or an outage re-delivers
//! (at least once) and never loses.

use std::{sync::Arc, time::Duration};

use prometheus::{IntCounter, IntGauge, Opts, Registry};
use tg_platform::{
    bus::{Bus, DomainEvent},
    clock::now_ms,
    db::Db,
    with_db,
};
use tokio::task::JoinHandle;

use crate::{
    amqp::{self, Names, Publisher},
    handle_with_retries, topic_matches, Consumer,
};

#[derive(Clone, Debug)]
pub struct MessagingConfig {
    /// RabbitMQ URL; `None` delivers in process.
    pub amqp_url: Option<String>,
    /// Prefix of exchange and queue names.
    pub amqp_prefix: String,
    /// Attempts a consumer gets at one message before it is dead-lettered.
    pub attempts: u32,
    /// How often the relay looks at the outbox when nobody woke it.
    pub poll: Duration,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig { amqp_url: None, amqp_prefix: "ticketgw".into(), attempts: 4, poll: Duration::from_secs(1) }
    }
}

/// Messages taken from the outbox in one go.
const RELAY_BATCH: i64 = 500;

#[derive(Clone)]
struct Gauges {
    pending: IntGauge,
    oldest_age: IntGauge,
    dead_letters: IntGauge,
    relayed: IntCounter,
    relay_errors: IntCounter,
    unroutable: IntCounter,
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
                "Messages no queue was bound for, moved to the dead-letter queue",
            ))?,
        };
        for m in [&g.pending, &g.oldest_age, &g.dead_letters] {
            registry.register(Box::new(m.clone()))?;
        }
        for m in [&g.relayed, &g.relay_errors, &g.unroutable] {
            registry.register(Box::new(m.clone()))?;
        }
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
        let names = Names::new(&config.amqp_prefix);
        let mut tasks = Vec::new();
        if let Some(url) = &config.amqp_url {
            for c in &consumers {
                tasks.push(tokio::spawn(amqp::run_consumer(url.clone(), names.clone(), c.clone(), config.attempts)));
            }
        }
        let relay = Relay { db, bus, consumers, config, names, gauges, publisher: None };
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
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    seq: i64,
    id: String,
    routing_key: String,
    occurred_at: String,
    payload: String,
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
            match self.relay_once().await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    let _ = tokio::time::timeout(self.config.poll, self.bus.next_commit()).await;
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    self.gauges.relay_errors.inc();
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "relay failed; messages stay in the outbox");
                    self.publisher = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Deliver one batch; the number of messages delivered.
    async fn relay_once(&mut self) -> anyhow::Result<usize> {
        let rows: Vec<OutboxRow> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT seq, id, routing_key, occurred_at, payload FROM messaging_outbox ORDER BY seq LIMIT $1")
            .bind(RELAY_BATCH).fetch_all(pool).await)?;
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
            })
            .collect();
        match self.config.amqp_url.clone() {
            Some(url) => {
                if self.publisher.is_none() {
                    self.publisher = Some(Publisher::connect(&url, &self.names, &self.consumers).await?);
                }
                let publisher = self.publisher.as_ref().expect("connected above");
                let unroutable = publisher.publish(&messages).await?;
                self.gauges.unroutable.inc_by(unroutable);
            }
            None => {
                for m in &messages {
                    self.deliver_in_process(m).await?;
                }
            }
        }
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

    async fn deliver_in_process(&self, message: &DomainEvent) -> anyhow::Result<()> {
        for c in &self.consumers {
            if !c.bindings().iter().any(|p| topic_matches(p, &message.routing_key)) {
                continue;
            }
            if let Err(error) = handle_with_retries(c.as_ref(), message, self.config.attempts).await {
                tracing::error!(consumer = c.name(), message_id = %message.id, %error, "message dead-lettered");
                let body = serde_json::to_string(message)?;
                with_db!(&self.db, pool => sqlx::query(
                    "INSERT INTO messaging_dead_letters (id, consumer, routing_key, message, error, failed_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
                    .bind(&message.id).bind(c.name()).bind(&message.routing_key).bind(&body).bind(&error).bind(now_ms())
                    .execute(pool).await.map(|_| ()))?;
            }
        }
        Ok(())
    }

    async fn update_gauges(&self) -> anyhow::Result<()> {
        let (pending, oldest): (i64, Option<i64>) = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM messaging_outbox").fetch_one(pool).await)?;
        self.gauges.pending.set(pending);
        self.gauges.oldest_age.set(oldest.map(|t| ((now_ms() - t) / 1000).max(0)).unwrap_or(0));
        let dead = match &self.publisher {
            Some(p) => i64::from(p.dead_letters().await?),
            None if self.config.amqp_url.is_some() => return Ok(()),
            None => with_db!(&self.db, pool => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM messaging_dead_letters").fetch_one(pool).await)?,
        };
        self.gauges.dead_letters.set(dead);
        Ok(())
    }
}
