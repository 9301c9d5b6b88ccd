//! Durable domain events.
//!
//! A service writes its messages into `messaging_outbox` in the transaction of the change
//! ([`OutboxWrite::enqueue`]) and calls `Bus::committed`. The relay ([`relay`]) takes them out in
//! order and delivers them:
//! - with `AMQP_URL`: to RabbitMQ ([`amqp`]), persistent, with publisher confirms; a row leaves the
//!   outbox only once the broker confirmed it, so a broker outage delays messages and loses none.
//!   Each [`Consumer`] has its own durable queue;
//! - otherwise: straight to the in-process consumers.
//!
//! Delivery is at least once; consumers are idempotent by recording each message id in their own
//! transaction ([`OutboxWrite::first_delivery`]).
//!
//! A consumer that fails is given the message again later, with growing delays (RabbitMQ delay
//! queues, or `messaging_retries` in process), for as long as it takes: a database outage delays
//! confirmations, it never drops them. Only a [`Poison`] message, which can never be handled, is
//! dead-lettered ([`dead_letters`]), where an admin lists and replays it.

pub mod amqp;
pub mod api;
pub mod dead_letters;
pub mod outbox;
pub mod relay;
pub mod retries;

use std::time::Duration;

use tg_platform::{bus::DomainEvent, db::ServiceMigrations};

pub use outbox::OutboxWrite;
pub use relay::{Messaging, MessagingConfig, Subscription};

pub fn migrations() -> ServiceMigrations {
    ServiceMigrations {
        service: "messaging",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

/// A durable subscriber to domain events.
#[async_trait::async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Stable name: its RabbitMQ queue is `ticketgw.<name>`, and its processed ids are kept under it.
    fn name(&self) -> &'static str;
    /// Routing-key patterns in RabbitMQ topic syntax (`booking.*`, `#`).
    fn bindings(&self) -> &'static [&'static str];
    /// Act on one message, recording its id with [`OutboxWrite::first_delivery`] in the same
    /// transaction as the effect. An error means "try again later" (retried until it succeeds),
    /// unless it is a [`Poison`], which is dead-lettered at once.
    async fn handle(&self, message: &DomainEvent) -> anyhow::Result<()>;
}

/// A message that can never be handled (undecodable, or an invariant it relies on is broken):
/// retrying cannot help, so it goes to the dead letters for an operator.
#[derive(Debug, thiserror::Error)]
#[error("poison message: {0}")]
pub struct Poison(pub String);

/// Whether a consumer's error makes the message poison (see [`Poison`]).
pub fn is_poison(error: &anyhow::Error) -> bool {
    error.chain().any(|c| c.is::<Poison>())
}

/// The step of [`RETRY_DELAYS`] after `attempt` failed attempts (RabbitMQ has one delay queue per
/// step).
pub fn retry_step(attempt: u32) -> usize {
    (attempt.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1)
}

/// How long to wait before attempt `attempt + 1` after `attempt` failed ones: 1 s, 5 s, then 15 s.
pub fn retry_delay(attempt: u32) -> Duration {
    RETRY_DELAYS[retry_step(attempt)]
}

/// The delays between attempts; the last repeats.
pub const RETRY_DELAYS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(15)];

/// Whether `routing_key` matches a topic `pattern`: `*` is one word, `#` zero or more.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(w), Some(x)) if w == x => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = routing_key.split('.').collect();
    go(&p, &k)
}

/// The span of `consumer` handling `message`: a child of the change that sent it, when traced.
pub(crate) fn consume_span(consumer: &str, message: &DomainEvent) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        consumer,
        routing_key = %message.routing_key,
        message_id = %message.id,
        otel.kind = "consumer"
    );
    if let Some(tp) = &message.trace_parent {
        tg_platform::traces::continue_from_traceparent(&span, tp);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_then_repeat() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(5));
        assert_eq!(retry_delay(3), Duration::from_secs(15));
        assert_eq!(retry_delay(50), Duration::from_secs(15));
    }

    #[test]
    fn poison_is_found_anywhere_in_the_chain() {
        let e = anyhow::Error::new(Poison("bad".into())).context("handling");
        assert!(is_poison(&e));
        assert!(!is_poison(&anyhow::anyhow!("database away")));
    }

    #[test]
    fn topic_patterns_follow_rabbitmq() {
        assert!(topic_matches("booking.*", "booking.held"));
        assert!(!topic_matches("booking.*", "booking.held.late"));
        assert!(!topic_matches("booking.*", "payment.succeeded"));
        assert!(topic_matches("#", "user.registered"));
        assert!(topic_matches("booking.#", "booking"));
        assert!(topic_matches("*.cancelled", "event.cancelled"));
        assert!(topic_matches("user.registered", "user.registered"));
        assert!(!topic_matches("user.registered", "user.deleted"));
    }
}
