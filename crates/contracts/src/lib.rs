//! The domain events services exchange, as types: one per routing key, with the payload's fields
//! named and typed, encoded ([`Message::to_event`]) and decoded ([`Message::from_event`]) here and
//! nowhere else. A producer and a consumer that use the same type cannot disagree on a field name.
//!
//! Every payload carries `schema`, the version of its shape. Adding an optional field keeps the
//! version; changing or removing one raises it, and a consumer refuses a version it does not know
//! (a poison message: retrying cannot help).

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tg_platform::bus::DomainEvent;

/// A domain event's payload type.
pub trait Message: Serialize + DeserializeOwned {
    const ROUTING_KEY: &'static str;
    /// The version of the payload's shape.
    const SCHEMA: u32 = 1;

    /// A new message (fresh id, now) carrying `self`.
    fn to_event(&self) -> DomainEvent {
        let mut payload = serde_json::to_value(self).expect("payload types serialize");
        if let Some(map) = payload.as_object_mut() {
            map.insert("schema".into(), Self::SCHEMA.into());
        }
        DomainEvent::new(Self::ROUTING_KEY, payload)
    }

    /// The payload of `event`, which must be of this type's routing key and a schema it reads.
    fn from_event(event: &DomainEvent) -> Result<Self, ContractError> {
        if event.routing_key != Self::ROUTING_KEY {
            return Err(ContractError::WrongKey { expected: Self::ROUTING_KEY, got: event.routing_key.clone() });
        }
        // Messages written before versions were carried are version 1.
        let schema = event.payload.get("schema").and_then(serde_json::Value::as_u64).unwrap_or(1);
        if schema != u64::from(Self::SCHEMA) {
            return Err(ContractError::Schema { key: Self::ROUTING_KEY, schema, known: Self::SCHEMA });
        }
        serde_json::from_value(event.payload.clone())
            .map_err(|e| ContractError::Payload { key: Self::ROUTING_KEY, error: e.to_string() })
    }
}

/// A message that does not read as the type asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error("expected a {expected} message, got {got}")]
    WrongKey { expected: &'static str, got: String },
    #[error("{key} schema {schema} is not known here (reads {known})")]
    Schema { key: &'static str, schema: u64, known: u32 },
    #[error("{key} payload does not read: {error}")]
    Payload { key: &'static str, error: String },
}

/// Someone registered an account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserRegistered {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    /// `en` or `km`.
    pub language: String,
}

impl Message for UserRegistered {
    const ROUTING_KEY: &'static str = "user.registered";
}

/// Why the users service writes to someone about their account.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccountMailKind {
    /// Prove the address: `link` verifies it (after registration, or for a new address).
    VerifyEmail,
    /// `link` sets a new password.
    ResetPassword,
    /// Someone tried to register this address, which already has an account.
    EmailTaken,
    /// The account's address was changed away from this one.
    EmailChanged,
}

/// A message about the account sent to one address by e-mail only. It carries a single-use link,
/// so it never goes into the mailbox, which someone else signed in as the account could read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountMail {
    pub user_id: String,
    pub kind: AccountMailKind,
    /// The address written to (for a change of address, the new one or the old one).
    pub to: String,
    pub display_name: String,
    /// `en` or `km`.
    pub language: String,
    /// The page that takes the single-use token, for the kinds that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// How long the link works, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_minutes: Option<u32>,
}

impl Message for AccountMail {
    const ROUTING_KEY: &'static str = "user.account_mail";
}

/// An account was deleted (anonymized): services forget what they keep about the person beyond
/// what accounting needs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserDeleted {
    pub user_id: String,
}

impl Message for UserDeleted {
    const ROUTING_KEY: &'static str = "user.deleted";
}

/// What every event message says of the event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub slug: String,
    /// The event's status after the change.
    pub status: String,
    pub title: String,
    pub organizer_id: String,
    /// RFC 3339, in the event's time zone.
    pub start: String,
}

/// An event went on sale (published).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct EventPublished(pub Event);

impl Message for EventPublished {
    const ROUTING_KEY: &'static str = "event.published";
}

/// A published event changed (edited, unpublished, completed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct EventUpdated(pub Event);

impl Message for EventUpdated {
    const ROUTING_KEY: &'static str = "event.updated";
}

/// An event was called off.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct EventCancelled(pub Event);

impl Message for EventCancelled {
    const ROUTING_KEY: &'static str = "event.cancelled";
}

/// A ticket was let in at the door.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TicketCheckedIn {
    pub ticket_id: String,
    pub event_id: String,
    pub gate: Option<String>,
    /// RFC 3339.
    pub at: String,
}

impl Message for TicketCheckedIn {
    const ROUTING_KEY: &'static str = "ticket.checked_in";
}

/// A ticket type and how many of it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub ticket_type_id: String,
    pub quantity: i64,
}

/// What every booking message says of its booking, as read in the transaction that changed it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Booking {
    pub booking_id: String,
    pub event_id: String,
    pub user_id: String,
    /// The booking's status after the change.
    pub status: String,
    /// In the currency's units (e.g. 25.5 USD).
    pub total_amount: f64,
    pub currency: String,
    pub items: Vec<Item>,
}

/// Seats held for a booking, waiting for its payment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct BookingHeld(pub Booking);

impl Message for BookingHeld {
    const ROUTING_KEY: &'static str = "booking.held";
}

/// A paid booking confirmed: its tickets exist.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct BookingConfirmed(pub Booking);

impl Message for BookingConfirmed {
    const ROUTING_KEY: &'static str = "booking.confirmed";
}

/// A hold ran out unpaid; its seats are free again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct BookingExpired(pub Booking);

impl Message for BookingExpired {
    const ROUTING_KEY: &'static str = "booking.expired";
}

/// A hold given up, or tickets of a confirmed booking cancelled (all, or those named), with what they were worth.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BookingCancelled {
    #[serde(flatten)]
    pub booking: Booking,
    /// The tickets cancelled (none for a hold).
    pub cancelled_tickets: Vec<String>,
    /// What the cancelled tickets were worth, in cents: the refund owed (0 for a hold).
    pub refund_cents: i64,
}

impl Message for BookingCancelled {
    const ROUTING_KEY: &'static str = "booking.cancelled";
}

/// What every payment message says of its payment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Payment {
    pub payment_id: String,
    pub booking_id: String,
    pub user_id: String,
    pub provider: String,
    pub amount_cents: i64,
    pub currency: String,
    /// The payment's status after the change.
    pub status: String,
}

/// A payment succeeded: its booking is to be confirmed (or the money returned).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct PaymentSucceeded(pub Payment);

impl Message for PaymentSucceeded {
    const ROUTING_KEY: &'static str = "payment.succeeded";
}

/// A payment failed or was abandoned.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct PaymentFailed(pub Payment);

impl Message for PaymentFailed {
    const ROUTING_KEY: &'static str = "payment.failed";
}

/// Money went back to the payer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PaymentRefunded {
    #[serde(flatten)]
    pub payment: Payment,
    pub refund_id: String,
    pub refund_cents: i64,
}

impl Message for PaymentRefunded {
    const ROUTING_KEY: &'static str = "payment.refunded";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment() -> Payment {
        Payment {
            payment_id: "pay_1".into(),
            booking_id: "bk_1".into(),
            user_id: "u1".into(),
            provider: "sandbox".into(),
            amount_cents: 2550,
            currency: "USD".into(),
            status: "succeeded".into(),
        }
    }

    #[test]
    fn messages_round_trip_with_their_key_and_schema() {
        let sent = PaymentRefunded { payment: payment(), refund_id: "r1".into(), refund_cents: 100 };
        let event = sent.to_event();
        assert_eq!(event.routing_key, "payment.refunded");
        assert_eq!(event.payload["schema"], 1);
        // The wire shape stays flat, as consumers written before these types read it.
        assert_eq!(event.payload["payment_id"], "pay_1");
        assert_eq!(event.payload["refund_cents"], 100);
        assert_eq!(PaymentRefunded::from_event(&event).unwrap(), sent);
    }

    #[test]
    fn other_keys_unknown_schemas_and_bad_payloads_are_refused() {
        let event = PaymentSucceeded(payment()).to_event();
        assert!(matches!(PaymentFailed::from_event(&event), Err(ContractError::WrongKey { .. })));
        let mut newer = event.clone();
        newer.payload["schema"] = 2.into();
        assert!(matches!(PaymentSucceeded::from_event(&newer), Err(ContractError::Schema { schema: 2, .. })));
        let mut old = event.clone();
        old.payload.as_object_mut().unwrap().remove("schema");
        assert!(PaymentSucceeded::from_event(&old).is_ok(), "no schema field reads as version 1");
        let mut broken = event;
        broken.payload.as_object_mut().unwrap().remove("booking_id");
        assert!(matches!(PaymentSucceeded::from_event(&broken), Err(ContractError::Payload { .. })));
    }
}
