//! Request and response types of the bookings service.

use serde::{Deserialize, Serialize};
use tg_platform::bus::DomainEvent;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    /// Event id or slug.
    pub event_id: String,
    pub items: Vec<ItemRequest>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub ticket_type_id: String,
    pub quantity: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct BookingView {
    pub id: String,
    pub event_id: String,
    pub user_id: String,
    /// `pending_payment`, `confirmed`, `expired` or `cancelled`.
    pub status: String,
    pub items: Vec<ItemView>,
    pub total_amount: f64,
    pub currency: String,
    /// RFC 3339; the hold is released after this unless paid.
    pub expires_at: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ItemView {
    pub ticket_type_id: String,
    pub quantity: i64,
    pub unit_price: f64,
    pub refundable: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TicketView {
    pub id: String,
    /// Short human-readable code printed under the QR code.
    pub code: String,
    pub booking_id: String,
    pub event_id: String,
    pub ticket_type_id: String,
    /// `valid` or `cancelled`.
    pub status: String,
    /// Signed token (EdDSA JWT) the QR code holds; verifiable offline with the event's public key.
    pub token: String,
    /// Path of the QR code image (SVG).
    pub qr_svg: String,
    pub checked_in_at: Option<String>,
}

/// Answer to a scan.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ScanResult {
    /// `valid`, `already_checked_in`, `wrong_event`, `cancelled`, `forged` (a QR token not signed by
    /// us) or `unknown_code` (no ticket of this event has the typed code).
    pub result: String,
    pub ticket_id: Option<String>,
    pub ticket_type_id: Option<String>,
    /// The code printed on the ticket, for the door staff to read back.
    #[serde(default)]
    pub code: Option<String>,
    /// For `already_checked_in`: when and where the first scan was.
    pub first_checked_in_at: Option<String>,
    pub first_gate: Option<String>,
}

impl ScanResult {
    pub fn bare(result: &str) -> Self {
        ScanResult {
            result: result.into(),
            ticket_id: None,
            ticket_type_id: None,
            code: None,
            first_checked_in_at: None,
            first_gate: None,
        }
    }
}

pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

pub fn from_cents(c: i64) -> f64 {
    c as f64 / 100.0
}

/// What the domain events about a booking carry, as read in the transaction that changed it.
pub struct BookingFacts {
    pub id: String,
    pub event_id: String,
    pub user_id: String,
    pub amount_cents: i64,
    pub currency: String,
    /// (ticket type id, quantity)
    pub items: Vec<(String, i64)>,
}

impl BookingFacts {
    /// The `routing_key` message about this booking, now in `status`.
    pub fn message(&self, routing_key: &str, status: &str) -> DomainEvent {
        DomainEvent::new(
            routing_key,
            serde_json::json!({
                "booking_id": self.id, "event_id": self.event_id, "user_id": self.user_id, "status": status,
                "total_amount": from_cents(self.amount_cents), "currency": self.currency,
                "items": self.items.iter().map(|(t, q)| serde_json::json!({"ticket_type_id": t, "quantity": q})).collect::<Vec<_>>(),
            }),
        )
    }
}
