//! What the payments service needs from the bookings service.

use tg_platform::{auth::Principal, ApiResult};

/// A booking as payments sees it.
#[derive(Clone, Debug)]
pub struct BookingInfo {
    pub id: String,
    pub user_id: String,
    pub event_id: String,
    /// `pending_payment`, `confirmed`, `expired` or `cancelled`.
    pub status: String,
    pub amount_cents: i64,
    pub currency: String,
    /// Unix milliseconds after which the hold is released.
    pub expires_at_ms: i64,
    /// Shown on the provider's page.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmFailure {
    /// The hold expired and its seats are gone, or the booking was cancelled: refund.
    CannotConfirm(String),
    Internal(String),
}

#[async_trait::async_trait]
pub trait Bookings: Send + Sync {
    async fn booking(&self, id: &str) -> anyhow::Result<Option<BookingInfo>>;
    /// Turn the paid hold into tickets (idempotent).
    async fn confirm(&self, booking_id: &str) -> Result<(), ConfirmFailure>;
    /// Cancel tickets (all when `None`) of a confirmed booking for a refund, returning their seats;
    /// authorizes `principal`. The `booking.cancelled` message it queues carries `refund_cents`.
    async fn refund_tickets(
        &self,
        principal: &Principal,
        booking_id: &str,
        tickets: Option<&[String]>,
    ) -> ApiResult<i64>;
}
