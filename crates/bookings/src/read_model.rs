//! Bookings' read model of events, used when the events service runs in another process: the
//! documents it sells, kept in its own table (`bookings_events`), filled on first use from the events
//! service and refreshed by `event.published` / `event.updated` / `event.cancelled`. The hold path
//! therefore never waits on the events service; only a first look at an event does.

use std::{str::FromStr, sync::Arc};

use tg_contracts::{EventCancelled, EventPublished, EventUpdated, Message};
use tg_events::document::EventDocument;
use tg_messaging::{Consumer, Poison};
use tg_platform::{auth::Principal, bus::DomainEvent, clock::now_ms, db::Db, with_db};

use crate::ports::EventCatalog;

pub struct EventsReadModel {
    db: Db,
    /// The events service (a client of its internal routes).
    source: Arc<dyn EventCatalog>,
}

impl EventsReadModel {
    pub fn new(db: Db, source: Arc<dyn EventCatalog>) -> Arc<EventsReadModel> {
        Arc::new(EventsReadModel { db, source })
    }

    /// Fetch the event's current document from the events service and store it, unless a newer
    /// edit is stored already (two refreshes racing: the older fetch must not win).
    pub async fn refresh(&self, key: &str) -> anyhow::Result<Option<EventDocument>> {
        let Some(doc) = self.source.event(key).await? else { return Ok(None) };
        let json = serde_json::to_string(&doc)?;
        // The document's own last edit (to the second); unreadable ones count as now.
        let edited_ms =
            jiff::Timestamp::from_str(&doc.audit.updated_at).map(|t| t.as_millisecond()).unwrap_or(now_ms());
        with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO bookings_events (id, slug, document, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, document = excluded.document, updated_at = excluded.updated_at
             WHERE bookings_events.updated_at <= excluded.updated_at")
            .bind(&doc.id).bind(&doc.slug).bind(&json).bind(edited_ms).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(Some(doc))
    }

    async fn stored(&self, key: &str) -> anyhow::Result<Option<EventDocument>> {
        let json: Option<String> = with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT document FROM bookings_events WHERE id = $1 OR slug = $1 ORDER BY updated_at DESC LIMIT 1")
            .bind(key).fetch_optional(pool).await)?;
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    /// The consumer that keeps the table current.
    pub fn consumer(self: &Arc<Self>) -> Arc<dyn Consumer> {
        Arc::new(ReadModelConsumer(self.clone()))
    }
}

#[async_trait::async_trait]
impl EventCatalog for EventsReadModel {
    async fn event(&self, key: &str) -> anyhow::Result<Option<EventDocument>> {
        match self.stored(key).await? {
            Some(doc) => Ok(Some(doc)),
            None => self.refresh(key).await,
        }
    }
    async fn manages(&self, principal: &Principal, event_id: &str) -> anyhow::Result<bool> {
        self.source.manages(principal, event_id).await
    }
}

/// The read model's queue and bindings (declared by relays in other processes too).
pub const SUBSCRIPTION: tg_messaging::Subscription = tg_messaging::Subscription {
    name: "bookings-events",
    bindings: &[EventPublished::ROUTING_KEY, EventUpdated::ROUTING_KEY, EventCancelled::ROUTING_KEY],
};

struct ReadModelConsumer(Arc<EventsReadModel>);

#[async_trait::async_trait]
impl Consumer for ReadModelConsumer {
    fn name(&self) -> &'static str {
        SUBSCRIPTION.name
    }
    fn bindings(&self) -> &'static [&'static str] {
        SUBSCRIPTION.bindings
    }
    /// Idempotent (the current document replaces the stored one), so no processed-id record is needed.
    async fn handle(&self, message: &DomainEvent) -> anyhow::Result<()> {
        let event_id = match message.routing_key.as_str() {
            EventPublished::ROUTING_KEY => EventPublished::from_event(message).map(|m| m.0.event_id),
            EventUpdated::ROUTING_KEY => EventUpdated::from_event(message).map(|m| m.0.event_id),
            _ => EventCancelled::from_event(message).map(|m| m.0.event_id),
        }
        .map_err(|e| Poison(e.to_string()))?;
        self.0.refresh(&event_id).await?;
        Ok(())
    }
}
