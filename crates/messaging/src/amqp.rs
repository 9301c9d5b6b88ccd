//! RabbitMQ: the topology, a confirming publisher for the relay, and a consumer loop per consumer.
//!
//! Topology, all durable: a topic exchange `<prefix>.events`; per consumer a queue
//! `<prefix>.<consumer>` bound with the consumer's patterns, and one delay queue per retry step
//! (`<prefix>.<consumer>.retry-<n>s`, whose expired messages go back to the consumer's queue); the
//! fanout exchange `<prefix>.dead-letter` with its queue `<prefix>.dead-letter`, which the relay
//! empties into `messaging_dead_letters` (see [`crate::dead_letters`]).

use std::{sync::Arc, time::Duration};
use tracing::Instrument;

use anyhow::Context;
use futures_lite::stream::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tg_platform::{bus::DomainEvent, db::Db, telemetry::Bounded};

use crate::{
    dead_letters, is_poison,
    relay::{Counters, Subscription},
    retry_delay, retry_step, Consumer, Poison, RETRY_DELAYS,
};

/// Header counting a message's failed attempts at its consumer.
const ATTEMPTS_HEADER: &str = "x-tg-attempts";
/// Headers of a dead letter: which consumer gave up, and why.
const CONSUMER_HEADER: &str = "x-tg-consumer";
const ERROR_HEADER: &str = "x-tg-error";

#[derive(Clone, Debug)]
pub struct Names {
    pub exchange: String,
    pub dead_letter: String,
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            exchange: format!("{prefix}.events"),
            dead_letter: format!("{prefix}.dead-letter"),
            prefix: prefix.to_owned(),
        }
    }

    pub fn queue(&self, consumer: &str) -> String {
        format!("{}.{consumer}", self.prefix)
    }

    /// The delay queue of retry step `step` (0-based) of `consumer`.
    pub fn retry_queue(&self, consumer: &str, step: usize) -> String {
        format!("{}.{consumer}.retry-{}s", self.prefix, RETRY_DELAYS[step].as_secs())
    }

    /// The consumer a queue name belongs to (`<prefix>.<consumer>`), if it is one.
    fn consumer_of(&self, queue: &str) -> Option<String> {
        let rest = queue.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        Some(rest.split(".retry-").next().unwrap_or(rest).to_owned())
    }
}

fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

/// Connect and declare the exchanges and the dead-letter queue.
pub async fn connect(url: &str, names: &Names) -> anyhow::Result<(Connection, Channel)> {
    let conn = Connection::connect(url, ConnectionProperties::default()).await.context("connecting to RabbitMQ")?;
    let ch = conn.create_channel().await?;
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare(short(&names.exchange), ExchangeKind::Topic, durable, FieldTable::default()).await?;
    ch.exchange_declare(short(&names.dead_letter), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    ch.queue_declare(short(&names.dead_letter), QueueDeclareOptions::durable(), FieldTable::default()).await?;
    ch.queue_bind(
        short(&names.dead_letter),
        short(&names.dead_letter),
        short(""),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok((conn, ch))
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declare a consumer's queue, bindings and delay queues (idempotent).
pub async fn declare_queue(ch: &Channel, names: &Names, consumer: Subscription) -> anyhow::Result<String> {
    let queue = names.queue(consumer.name);
    let mut args = FieldTable::default();
    args.insert(short("x-dead-letter-exchange"), text(&names.dead_letter));
    ch.queue_declare(short(&queue), QueueDeclareOptions::durable(), args).await?;
    // A delay queue holds a message for its step's delay, then the broker dead-letters it back to
    // the consumer's queue through the default exchange.
    for (step, delay) in RETRY_DELAYS.iter().enumerate() {
        let mut args = FieldTable::default();
        args.insert(short("x-message-ttl"), AMQPValue::LongUInt(delay.as_millis() as u32));
        args.insert(short("x-dead-letter-exchange"), text(""));
        args.insert(short("x-dead-letter-routing-key"), text(&queue));
        ch.queue_declare(short(&names.retry_queue(consumer.name, step)), QueueDeclareOptions::durable(), args).await?;
    }
    for pattern in consumer.bindings {
        ch.queue_bind(
            short(&queue),
            short(&names.exchange),
            short(pattern),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(queue)
}

/// Messages waiting in the dead-letter queue.
pub async fn dead_letter_count(ch: &Channel, names: &Names) -> anyhow::Result<u32> {
    let q = ch.queue_declare(short(&names.dead_letter), QueueDeclareOptions::durable(), FieldTable::default()).await?;
    Ok(q.message_count())
}

fn properties(e: &DomainEvent) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(short("application/json"))
        .with_message_id(short(&e.id));
    match &e.trace_parent {
        Some(tp) => with_headers(&properties, &[(TRACEPARENT_HEADER, AMQPValue::LongString(tp.as_str().into()))]),
        None => properties,
    }
}

/// The W3C trace context of the change a message tells of (OpenTelemetry's AMQP convention).
const TRACEPARENT_HEADER: &str = "traceparent";

/// Publish on a channel in confirm mode and wait for the broker's confirm.
async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> anyhow::Result<()> {
    let confirm = ch
        .basic_publish(short(exchange), short(routing_key), BasicPublishOptions::default(), body, properties)
        .await?
        .await?;
    anyhow::ensure!(matches!(confirm, Confirmation::Ack(_)), "the broker refused a message for {exchange:?}");
    Ok(())
}

/// `properties` with `extra` headers set (over those it has).
fn with_headers(properties: &BasicProperties, extra: &[(&str, AMQPValue)]) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    for (name, value) in extra {
        headers.insert(short(name), value.clone());
    }
    properties.clone().with_headers(headers)
}

fn header<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    properties.headers().as_ref()?.inner().get(name)
}

fn header_u32(properties: &BasicProperties, name: &str) -> Option<u32> {
    match header(properties, name)? {
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        _ => None,
    }
}

fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    match header(properties, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The queue a message was dead-lettered from by the broker (its first `x-death` entry).
fn death_queue(properties: &BasicProperties) -> Option<String> {
    let AMQPValue::FieldArray(deaths) = header(properties, "x-death")? else { return None };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else { return None };
    match first.inner().get("queue")? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A channel in confirm mode publishing the relay's batches.
pub struct Publisher {
    _conn: Connection,
    ch: Channel,
    names: Names,
}

impl Publisher {
    pub async fn connect(url: &str, names: &Names, consumers: &[Subscription]) -> anyhow::Result<Self> {
        let (conn, ch) = connect(url, names).await?;
        // Queues exist before the first message, so nothing published is unroutable for lack of them.
        for c in consumers {
            declare_queue(&ch, names, *c).await?;
        }
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Publisher { _conn: conn, ch, names: names.clone() })
    }

    /// Publish a batch and wait for the broker to confirm every message; returns the number of
    /// unroutable ones, which were moved to the dead-letter exchange. (The relay publishes only
    /// messages some consumer subscribes to, so an unroutable one means a missing queue.)
    pub async fn publish(&self, batch: &[DomainEvent]) -> anyhow::Result<u64> {
        let opts = BasicPublishOptions { mandatory: true, ..Default::default() };
        let mut pending = Vec::with_capacity(batch.len());
        for e in batch {
            let body = serde_json::to_vec(e)?;
            let confirm = self
                .ch
                .basic_publish(short(&self.names.exchange), short(&e.routing_key), opts, &body, properties(e))
                .await?;
            pending.push((e, confirm));
        }
        let mut unroutable = 0;
        for (e, confirm) in pending {
            match confirm.await? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) => {
                    // What the broker returned is dead-lettered as it came back (its own body and
                    // properties), so a return paired with another message's confirm moves no copy
                    // of a delivered message.
                    let returned = returned.delivery;
                    tracing::warn!(
                        message_id = ?returned.properties.message_id().as_ref().map(|m| m.as_str()),
                        routing_key = %returned.routing_key,
                        "unroutable message dead-lettered"
                    );
                    unroutable += 1;
                    let props = with_headers(
                        &returned.properties,
                        &[(ERROR_HEADER, text("unroutable: no queue is bound for its routing key"))],
                    );
                    publish_confirmed(
                        &self.ch,
                        &self.names.dead_letter,
                        returned.routing_key.as_str(),
                        &returned.data,
                        props,
                    )
                    .await?;
                }
                Confirmation::Nack(_) => anyhow::bail!("broker refused message {}", e.id),
                Confirmation::NotRequested => anyhow::bail!("channel is not in confirm mode"),
            }
        }
        Ok(unroutable)
    }

    /// Put `message` straight into `consumer`'s queue (a replay or a retry from the table).
    pub async fn send_to(&self, consumer: &str, message: &DomainEvent, attempts: u32) -> anyhow::Result<()> {
        let body = serde_json::to_vec(message)?;
        let props = with_headers(&properties(message), &[(ATTEMPTS_HEADER, AMQPValue::LongUInt(attempts))]);
        publish_confirmed(&self.ch, "", &self.names.queue(consumer), &body, props).await
    }

    pub async fn dead_letters(&self) -> anyhow::Result<u32> {
        dead_letter_count(&self.ch, &self.names).await
    }
}

/// What one delivery came to.
enum Handled {
    Done,
    /// Failed; worth another try later.
    Retry(anyhow::Error),
    Poison(anyhow::Error),
}

async fn handle_delivery(consumer: &dyn Consumer, delivery: &Delivery) -> Handled {
    let mut message = match serde_json::from_slice::<DomainEvent>(&delivery.data) {
        Ok(m) => m,
        Err(e) => return Handled::Poison(Poison(format!("not a domain event: {e}")).into()),
    };
    message.trace_parent = header_text(&delivery.properties, TRACEPARENT_HEADER);
    match consumer.handle(&message).instrument(crate::consume_span(consumer.name(), &message)).await {
        Ok(()) => Handled::Done,
        Err(e) if is_poison(&e) => Handled::Poison(e),
        Err(e) => Handled::Retry(e),
    }
}

/// Consume `consumer`'s queue until the connection fails; the caller reconnects. A failed message
/// goes to the delay queue of its attempt (and comes back after the delay), a poison message to
/// the dead letters; either is published with a confirm before the delivery is acknowledged, so a
/// crash in between delivers it twice (the consumer is idempotent), never zero times.
pub async fn consume(
    url: &str,
    names: &Names,
    consumer: &Arc<dyn Consumer>,
    counters: &Counters,
) -> anyhow::Result<()> {
    let (_conn, ch) = connect(url, names).await?;
    let queue =
        declare_queue(&ch, names, Subscription { name: consumer.name(), bindings: consumer.bindings() }).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    ch.basic_qos(32, BasicQosOptions::default()).await?;
    let mut deliveries =
        ch.basic_consume(short(&queue), short(""), BasicConsumeOptions::default(), FieldTable::default()).await?;
    tracing::info!(queue, "consuming");
    let name = consumer.name();
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let attempts = header_u32(&delivery.properties, ATTEMPTS_HEADER).unwrap_or(0) + 1;
        match handle_delivery(consumer.as_ref(), &delivery).await {
            Handled::Done => {}
            Handled::Retry(error) => {
                let retry_in_s = retry_delay(attempts).as_secs();
                tracing::warn!(consumer = name, attempts, retry_in_s, error = %Bounded(&error), "consumer failed; will retry");
                counters.retried(name);
                let props = with_headers(&delivery.properties, &[(ATTEMPTS_HEADER, AMQPValue::LongUInt(attempts))]);
                let queue = names.retry_queue(name, retry_step(attempts));
                publish_confirmed(&ch, "", &queue, &delivery.data, props).await?;
            }
            Handled::Poison(error) => {
                tracing::error!(consumer = name, error = %Bounded(&error), "poison message dead-lettered");
                counters.dead_lettered(name);
                let props = with_headers(
                    &delivery.properties,
                    &[
                        (CONSUMER_HEADER, text(name)),
                        (ERROR_HEADER, text(&Bounded(&error).to_string())),
                        (ATTEMPTS_HEADER, AMQPValue::LongUInt(attempts)),
                    ],
                );
                publish_confirmed(&ch, &names.dead_letter, delivery.routing_key.as_str(), &delivery.data, props)
                    .await?;
            }
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    anyhow::bail!("consumer stream of {queue} ended")
}

/// Run [`consume`] forever, reconnecting with backoff while the broker is away.
pub async fn run_consumer(url: String, names: Names, consumer: Arc<dyn Consumer>, counters: Counters) {
    let mut delay = Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        if let Err(e) = consume(&url, &names, &consumer, &counters).await {
            tracing::warn!(consumer = consumer.name(), error = %Bounded(&e), "consumer disconnected; reconnecting");
        }
        if started.elapsed() > Duration::from_secs(30) {
            delay = Duration::from_millis(200);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Move what reaches the dead-letter queue into `messaging_dead_letters`, where admins list and
/// replay it. Acknowledged only once stored; while the database is away it stays in the queue.
async fn archive_dead_letters(url: &str, names: &Names, db: &Db) -> anyhow::Result<()> {
    let (_conn, ch) = connect(url, names).await?;
    ch.basic_qos(16, BasicQosOptions::default()).await?;
    let mut deliveries = ch
        .basic_consume(short(&names.dead_letter), short(""), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let p = &delivery.properties;
        let consumer = header_text(p, CONSUMER_HEADER)
            .or_else(|| death_queue(p).and_then(|q| names.consumer_of(&q)))
            .unwrap_or_else(|| "unknown".into());
        let error = header_text(p, ERROR_HEADER).unwrap_or_else(|| "rejected by the broker".into());
        let body = String::from_utf8_lossy(&delivery.data).replace('\0', "\u{FFFD}");
        let id = p.message_id().as_ref().map(|m| m.as_str().to_owned());
        let id = id.unwrap_or_else(|| format!("unidentified-{}", uuid::Uuid::now_v7()));
        match dead_letters::record(db, &consumer, &id, delivery.routing_key.as_str(), &body, &error).await {
            Ok(_) => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(e) => {
                tracing::warn!(error = %Bounded(&e), "dead letter not stored yet; kept in the queue");
                tokio::time::sleep(Duration::from_secs(2)).await;
                delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
            }
        }
    }
    anyhow::bail!("dead-letter stream ended")
}

/// Run [`archive_dead_letters`] forever, reconnecting while the broker is away.
pub async fn run_archiver(url: String, names: Names, db: Db) {
    loop {
        if let Err(e) = archive_dead_letters(&url, &names, &db).await {
            tracing::warn!(error = %Bounded(&e), "dead-letter archiver disconnected; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
