//! What the UI reads from the API: only the fields it shows.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct Me {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub language: String,
    pub roles: Vec<String>,
    pub organizer_id: Option<String>,
}

#[derive(Deserialize, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

#[derive(Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Clone, Deserialize)]
pub struct Item {
    pub ticket_type_id: String,
    pub quantity: i64,
    pub unit_price: f64,
    pub refundable: bool,
}

#[derive(Clone, Deserialize)]
pub struct Booking {
    pub id: String,
    pub event_id: String,
    pub status: String,
    pub items: Vec<Item>,
    pub total_amount: f64,
    pub currency: String,
    pub expires_at: String,
    pub created_at: String,
}

#[derive(Clone, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub code: String,
    pub booking_id: String,
    pub event_id: String,
    pub ticket_type_id: String,
    pub status: String,
    pub checked_in_at: Option<String>,
}

#[derive(Clone, Deserialize)]
pub struct Payment {
    pub id: String,
    pub booking_id: String,
    pub provider: String,
    pub status: String,
    pub amount: f64,
    pub currency: String,
    #[serde(default)]
    pub refunded_amount: f64,
    #[serde(default)]
    pub next_action: serde_json::Value,
}

// Availability and sales are read with the bookings API's own types (`tg_bookings::api`).

#[derive(Deserialize)]
pub struct Attendee {
    pub code: String,
    pub ticket_type_id: String,
    pub name: String,
    pub email: Option<String>,
    pub status: String,
    pub checked_in_at: Option<String>,
    pub gate: Option<String>,
}

#[derive(Deserialize)]
pub struct Attendees {
    pub items: Vec<Attendee>,
    pub checked_in: i64,
}

#[derive(Deserialize)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub events: i64,
}

#[derive(Deserialize)]
pub struct Application {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub name: String,
    pub contact_email: String,
    pub website: Option<String>,
    pub message: Option<String>,
    pub created_at: String,
}

#[derive(Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub roles: Vec<String>,
    pub created_at: String,
}

#[derive(Deserialize)]
pub struct Message {
    pub subject: String,
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
}
