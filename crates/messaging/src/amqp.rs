//! RabbitMQ: the topology, a confirming publisher for the relay, and a consumer loop per consumer.
//!
//! Topology, all durable: a topic exchange `<prefix>.events`; per consumer a queue
//! `<prefix>.<consumer>` bound with the consumer's patterns and dead-lettering to the fanout exchange
//! `<prefix>.dead-letter`, whose queue `<prefix>.dead-letter` keeps poison and unroutable messages.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use futures_lite::stream::StreamExt;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tg_platform::bus::DomainEvent;

use crate::{handle_with_retries, Consumer};

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

/// Declare a consumer's queue and bindings (idempotent).
pub async fn declare_queue(ch: &Channel, names: &Names, consumer: &dyn Consumer) -> anyhow::Result<String> {
    let queue = names.queue(consumer.name());
    let mut args = FieldTable::default();
    args.insert(short("x-dead-letter-exchange"), AMQPValue::LongString(LongString::from(names.dead_letter.as_str())));
    ch.queue_declare(short(&queue), QueueDeclareOptions::durable(), args).await?;
    for pattern in consumer.bindings() {
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
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(short("application/json"))
        .with_message_id(short(&e.id))
}

/// A channel in confirm mode publishing the relay's batches.
pub struct Publisher {
    _conn: Connection,
    ch: Channel,
    names: Names,
}

impl Publisher {
    pub async fn connect(url: &str, names: &Names, consumers: &[Arc<dyn Consumer>]) -> anyhow::Result<Self> {
        let (conn, ch) = connect(url, names).await?;
        // Queues exist before the first message, so nothing published is unroutable for lack of them.
        for c in consumers {
            declare_queue(&ch, names, c.as_ref()).await?;
        }
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Publisher { _conn: conn, ch, names: names.clone() })
    }

    /// Publish a batch and wait for the broker to confirm every message; returns the number of
    /// unroutable ones, which were moved to the dead-letter exchange.
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
                    // No queue is bound for this key: keep it where an operator sees it.
                    tracing::warn!(message_id = %e.id, routing_key = %e.routing_key, reply = %returned.reply_text, "unroutable message dead-lettered");
                    unroutable += 1;
                    let body = serde_json::to_vec(e)?;
                    let c = self
                        .ch
                        .basic_publish(
                            short(&self.names.dead_letter),
                            short(&e.routing_key),
                            opts,
                            &body,
                            properties(e),
                        )
                        .await?
                        .await?;
                    anyhow::ensure!(matches!(c, Confirmation::Ack(None)), "dead-letter exchange refused a message");
                }
                Confirmation::Nack(_) => anyhow::bail!("broker refused message {}", e.id),
                Confirmation::NotRequested => anyhow::bail!("channel is not in confirm mode"),
            }
        }
        Ok(unroutable)
    }

    pub async fn dead_letters(&self) -> anyhow::Result<u32> {
        dead_letter_count(&self.ch, &self.names).await
    }
}

/// Consume `consumer`'s queue until the connection fails; the caller reconnects.
pub async fn consume(url: &str, names: &Names, consumer: &Arc<dyn Consumer>, attempts: u32) -> anyhow::Result<()> {
    let (_conn, ch) = connect(url, names).await?;
    let queue = declare_queue(&ch, names, consumer.as_ref()).await?;
    ch.basic_qos(32, BasicQosOptions::default()).await?;
    let mut deliveries =
        ch.basic_consume(short(&queue), short(""), BasicConsumeOptions::default(), FieldTable::default()).await?;
    tracing::info!(queue, "consuming");
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let outcome = match serde_json::from_slice::<DomainEvent>(&delivery.data) {
            Ok(message) => handle_with_retries(consumer.as_ref(), &message, attempts).await,
            Err(e) => Err(format!("not a domain event: {e}")),
        };
        match outcome {
            Ok(()) => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(error) => {
                tracing::error!(consumer = consumer.name(), %error, "message dead-lettered");
                delivery.nack(BasicNackOptions { requeue: false, ..Default::default() }).await?;
            }
        }
    }
    anyhow::bail!("consumer stream of {queue} ended")
}

/// Run [`consume`] forever, reconnecting with backoff while the broker is away.
pub async fn run_consumer(url: String, names: Names, consumer: Arc<dyn Consumer>, attempts: u32) {
    let mut delay = Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        if let Err(e) = consume(&url, &names, &consumer, attempts).await {
            tracing::warn!(consumer = consumer.name(), error = %format!("{e:#}"), "consumer disconnected; reconnecting");
        }
        if started.elapsed() > Duration::from_secs(30) {
            delay = Duration::from_millis(200);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
