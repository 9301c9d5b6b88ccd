//! Request and response types of the bookings service.

use serde::{Deserialize, Serialize};
use tg_contracts::{Booking, BookingCancelled, BookingConfirmed, BookingExpired, BookingHeld, Item, Message};
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
    /// What the booking's messages say of it, now in `status`.
    fn booking(&self, status: &str) -> Booking {
        Booking {
            booking_id: self.id.clone(),
            event_id: self.event_id.clone(),
            user_id: self.user_id.clone(),
            status: status.to_owned(),
            total_amount: from_cents(self.amount_cents),
            currency: self.currency.clone(),
            items: self.items.iter().map(|(t, q)| Item { ticket_type_id: t.clone(), quantity: *q }).collect(),
        }
    }

    pub fn held(&self) -> DomainEvent {
        BookingHeld(self.booking("pending_payment")).to_event()
    }

    pub fn confirmed(&self) -> DomainEvent {
        BookingConfirmed(self.booking("confirmed")).to_event()
    }

    pub fn expired(&self) -> DomainEvent {
        BookingExpired(self.booking("expired")).to_event()
    }

    /// `tickets` cancelled (none when a hold is given up), worth `refund_cents`; the booking is now in `status`.
    pub fn cancelled(&self, status: &str, tickets: Vec<String>, refund_cents: i64) -> DomainEvent {
        BookingCancelled { booking: self.booking(status), cancelled_tickets: tickets, refund_cents }.to_event()
    }
}
