//! Domain events (`event.published`, `booking.confirmed`, …) and the in-process bus that carries them.
//!
//! Every message has a unique id so consumers can be idempotent. This bus delivers to subscribers in
//! the same process, after the change is committed; the durable path (transactional outbox relayed to
//! RabbitMQ) replaces the delivery, not this message shape.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DomainEvent {
    /// Unique message id (UUIDv7).
    pub id: String,
    /// Routing key, e.g. `event.published`.
    pub routing_key: String,
    /// RFC 3339 instant of the change.
    pub occurred_at: String,
    pub payload: serde_json::Value,
}

#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<DomainEvent>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Bus { tx }
    }

    pub fn publish(&self, routing_key: &str, payload: serde_json::Value) -> DomainEvent {
        let event = DomainEvent {
            id: uuid::Uuid::now_v7().to_string(),
            routing_key: routing_key.to_owned(),
            occurred_at: crate::clock::rfc3339(crate::clock::now_ms()),
            payload,
        };
        tracing::debug!(id = %event.id, routing_key, "domain event");
        // No subscriber is not an error: nobody needs to hear it yet.
        let _ = self.tx.send(event.clone());
        event
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }
}
