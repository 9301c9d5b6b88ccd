//! Durable domain events.
//!
//! A service writes its messages into `messaging_outbox` in the transaction of the change
//! ([`OutboxWrite::enqueue`]) and calls `Bus::committed`. The relay ([`relay`]) takes them out in
//! order and delivers them:
//! - with `AMQP_URL`: to RabbitMQ ([`amqp`]), persistent, with publisher confirms; a row leaves the
//!   outbox only once the broker confirmed it, so a broker outage delays messages and loses none.
//!   Each [`Consumer`] has its own durable queue, dead-lettered to `ticketgw.dead-letter`;
//! - otherwise: straight to the in-process consumers, dead letters going to `messaging_dead_letters`.
//!
//! Delivery is at least once; consumers are idempotent by recording each message id in their own
//! transaction ([`OutboxWrite::first_delivery`]).

pub mod amqp;
pub mod outbox;
pub mod relay;

use std::time::Duration;

use tg_platform::{bus::DomainEvent, db::ServiceMigrations};

pub use outbox::OutboxWrite;
pub use relay::{Messaging, MessagingConfig};

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
    /// transaction as the effect. An error means "try again later"; after the retries are spent the
    /// message is dead-lettered.
    async fn handle(&self, message: &DomainEvent) -> anyhow::Result<()>;
}

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

/// Hand `message` to `consumer`, retrying with exponential backoff; the last error if all failed.
pub async fn handle_with_retries(consumer: &dyn Consumer, message: &DomainEvent, attempts: u32) -> Result<(), String> {
    let mut delay = Duration::from_millis(100);
    let mut last = String::new();
    for attempt in 1..=attempts.max(1) {
        match consumer.handle(message).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = format!("{e:#}");
                tracing::warn!(consumer = consumer.name(), message_id = %message.id, attempt, error = %last, "consumer failed");
                if attempt < attempts {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 4).min(Duration::from_secs(10));
                }
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

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
