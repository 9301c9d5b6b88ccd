//! What the bookings service needs from other services.

use tg_events::document::EventDocument;

/// Event documents, owned by the events service.
#[async_trait::async_trait]
pub trait EventCatalog: Send + Sync {
    /// The event by id or slug, whatever its status.
    async fn event(&self, key: &str) -> anyhow::Result<Option<EventDocument>>;
    /// Whether the user manages the event (its organizer, or an admin).
    async fn manages(&self, principal: &tg_platform::auth::Principal, event_id: &str) -> anyhow::Result<bool>;
}

/// Names and e-mails of users, owned by the users service (for attendee lists).
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync {
    /// (display name, email) of a user.
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<(String, Option<String>)>>;
}
