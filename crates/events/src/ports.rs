//! What the events service needs from other services, as typed interfaces. `ticketgw` wires in the
//! real implementations (in-process in `--target all`, HTTP clients when services run apart).

use std::collections::HashMap;

use crate::document::Organizer;

/// Organizer profiles, owned by the users service.
#[async_trait::async_trait]
pub trait OrganizerDirectory: Send + Sync {
    /// The organizer profile of a user, if they have one.
    async fn organizer_of_user(&self, user_id: &str) -> anyhow::Result<Option<Organizer>>;
    async fn organizer(&self, organizer_id: &str) -> anyhow::Result<Option<Organizer>>;
}

/// Sold and held tickets of one ticket type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TypeCounts {
    pub sold: i64,
    pub held: i64,
}

/// Ticket counts and attendance, owned by the bookings service (the source of truth for both).
#[async_trait::async_trait]
pub trait BookingsView: Send + Sync {
    /// Sold and held per ticket type id of one event.
    async fn counts(&self, event_id: &str) -> anyhow::Result<HashMap<String, TypeCounts>>;
    /// Confirmed tickets per event, for many events at once.
    async fn sold_totals(&self, event_ids: &[String]) -> anyhow::Result<HashMap<String, i64>>;
    /// Whether the user held a confirmed ticket for the event; `None` when no bookings service is wired in.
    async fn attended(&self, event_id: &str, user_id: &str) -> anyhow::Result<Option<bool>>;
}

/// Used while no bookings service is wired in: nothing is sold or held, and ratings are open.
pub struct NoBookings;

#[async_trait::async_trait]
impl BookingsView for NoBookings {
    async fn counts(&self, _: &str) -> anyhow::Result<HashMap<String, TypeCounts>> {
        Ok(HashMap::new())
    }
    async fn sold_totals(&self, _: &[String]) -> anyhow::Result<HashMap<String, i64>> {
        Ok(HashMap::new())
    }
    async fn attended(&self, _: &str, _: &str) -> anyhow::Result<Option<bool>> {
        Ok(None)
    }
}
