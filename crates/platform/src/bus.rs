//! Domain events (`event.published`, `booking.confirmed`, …) and the in-process bus that carries them.
//!
//! Every message has a unique id so consumers can be idempotent. Services write messages into the
//! transactional outbox (`tg-messaging`) with the change they describe and then call
//! [`Bus::committed`]; the relay delivers them and shows each delivered message to the observers of
//! this bus (tests, live views). Observers may miss messages when they lag; durable consumers are
//! `tg_messaging::Consumer`s.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Notify};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DomainEvent {
    /// Unique message id (UUIDv7).
    pub id: String,
    /// Routing key, e.g. `event.published`.
    pub routing_key: String,
    /// RFC 3339 instant of the change.
    pub occurred_at: String,
    pub payload: serde_json::Value,
    /// The W3C `traceparent` of the change that caused the message (when traces are on). Transport
    /// metadata, not part of the message: it travels in the outbox row and the AMQP headers.
    #[serde(skip)]
    pub trace_parent: Option<String>,
}

impl DomainEvent {
    pub fn new(routing_key: &str, payload: serde_json::Value) -> Self {
        DomainEvent {
            id: uuid::Uuid::now_v7().to_string(),
            routing_key: routing_key.to_owned(),
            occurred_at: crate::clock::rfc3339(crate::clock::now_ms()),
            payload,
            trace_parent: crate::traces::current_traceparent(),
        }
    }
}

#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<DomainEvent>,
    committed: Arc<Notify>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Bus { tx, committed: Arc::new(Notify::new()) }
    }

    /// A transaction with outbox messages committed: wake the relay now rather than at its next poll.
    pub fn committed(&self) {
        self.committed.notify_one();
    }

    /// Resolves at the next [`Bus::committed`] (or at once if one came since the last wait).
    pub async fn next_commit(&self) {
        self.committed.notified().await
    }

    /// Show a delivered message to the observers.
    pub fn delivered(&self, event: &DomainEvent) {
        tracing::debug!(id = %event.id, routing_key = %event.routing_key, "domain event delivered");
        // No observer is not an error.
        let _ = self.tx.send(event.clone());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }
}
