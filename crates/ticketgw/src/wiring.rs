//! In-process implementations of the interfaces services expect from each other.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, OnceLock, Weak},
};

use tg_bookings::{
    ports::{EventCatalog, UserDirectory},
    BookingsService,
};
use tg_events::{
    document::{EventDocument, Organizer},
    ports::{BookingsView, OrganizerDirectory, TypeCounts},
    EventsService,
};
use tg_platform::auth::Principal;
use tg_users::{model::OrganizerProfile, UsersService};

/// The events service's view of organizer profiles, answered by the users service in the same process.
pub struct UsersDirectory(pub Arc<UsersService>);

fn to_organizer(p: OrganizerProfile) -> Organizer {
    Organizer {
        id: p.id,
        name: p.name,
        logo: p.logo,
        contact_email: p.contact_email,
        contact_phone: p.contact_phone,
        website: p.website,
    }
}

#[async_trait::async_trait]
impl OrganizerDirectory for UsersDirectory {
    async fn organizer_of_user(&self, user_id: &str) -> anyhow::Result<Option<Organizer>> {
        Ok(self.0.organizer_of(user_id).await?.map(to_organizer))
    }
    async fn organizer(&self, organizer_id: &str) -> anyhow::Result<Option<Organizer>> {
        Ok(self.0.organizer(organizer_id).await?.map(to_organizer))
    }
}

/// The bookings service's view of users (names for attendee lists).
pub struct UsersContacts(pub Arc<UsersService>);

#[async_trait::async_trait]
impl UserDirectory for UsersContacts {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<(String, Option<String>)>> {
        Ok(self.0.user(user_id).await?.map(|u| (u.display_name, u.email)))
    }
}

/// The bookings service's view of events.
pub struct EventsCatalog(pub Arc<EventsService>);

#[async_trait::async_trait]
impl EventCatalog for EventsCatalog {
    async fn event(&self, key: &str) -> anyhow::Result<Option<EventDocument>> {
        self.0.event(key).await
    }
    async fn manages(&self, principal: &Principal, event_id: &str) -> anyhow::Result<bool> {
        self.0.manages(principal, event_id).await
    }
}

/// The events service's view of ticket counts. Events and bookings each need the other, so this is
/// bound once the bookings service exists, and holds it weakly: no reference cycle keeps the two
/// services (and their database pools and workers) alive after the application is dropped.
#[derive(Default)]
pub struct LateBookings(pub OnceLock<Weak<BookingsService>>);

impl LateBookings {
    fn get(&self) -> anyhow::Result<Arc<BookingsService>> {
        self.0.get().and_then(Weak::upgrade).ok_or_else(|| anyhow::anyhow!("bookings service not running"))
    }
}

#[async_trait::async_trait]
impl BookingsView for LateBookings {
    async fn counts(&self, event_id: &str) -> anyhow::Result<HashMap<String, TypeCounts>> {
        self.get()?.counts(event_id).await
    }
    async fn sold_totals(&self, event_ids: &[String]) -> anyhow::Result<HashMap<String, i64>> {
        self.get()?.sold_totals(event_ids).await
    }
    async fn attended(&self, event_id: &str, user_id: &str) -> anyhow::Result<Option<bool>> {
        self.get()?.attended(event_id, user_id).await
    }
}

/// The payments service's view of bookings, answered by the bookings service in the same process.
pub struct BookingsForPayments(pub Arc<BookingsService>);

#[async_trait::async_trait]
impl tg_payments::ports::Bookings for BookingsForPayments {
    async fn booking(&self, id: &str) -> anyhow::Result<Option<tg_payments::ports::BookingInfo>> {
        Ok(self.0.find(id).await?.map(booking_info))
    }

    async fn confirm(&self, booking_id: &str) -> Result<(), tg_payments::ports::ConfirmFailure> {
        use tg_payments::ports::ConfirmFailure;
        match self.0.confirm(booking_id).await {
            Ok(_) => Ok(()),
            Err(tg_bookings::ConfirmError::Internal(e)) => Err(ConfirmFailure::Internal(e)),
            Err(e) => Err(ConfirmFailure::CannotConfirm(e.to_string())),
        }
    }

    async fn refund_tickets(
        &self,
        principal: &Principal,
        booking_id: &str,
        tickets: Option<&[String]>,
    ) -> tg_platform::ApiResult<i64> {
        self.0.refund_tickets(principal, booking_id, tickets).await.map(|(_, cents)| cents)
    }
}

/// A booking as payments sees it: amounts in cents, the hold's end in Unix milliseconds.
pub fn booking_info(b: tg_bookings::model::BookingView) -> tg_payments::ports::BookingInfo {
    let expires_at_ms = jiff::Timestamp::from_str(&b.expires_at).map(|t| t.as_millisecond()).unwrap_or(0);
    let tickets: i64 = b.items.iter().map(|i| i.quantity).sum();
    tg_payments::ports::BookingInfo {
        description: format!("{tickets} ticket(s), booking {}", b.id),
        amount_cents: (b.total_amount * 100.0).round() as i64,
        id: b.id,
        user_id: b.user_id,
        event_id: b.event_id,
        status: b.status,
        currency: b.currency,
        expires_at_ms,
    }
}

/// What notifications need to know, answered by the users, events and bookings services.
pub struct NotificationsDirectory {
    pub users: Arc<UsersService>,
    pub events: Arc<EventsService>,
    pub bookings: Arc<BookingsService>,
}

#[async_trait::async_trait]
impl tg_notifications::Directory for NotificationsDirectory {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<tg_notifications::Contact>> {
        Ok(self.users.user(user_id).await?.map(|u| tg_notifications::Contact {
            display_name: u.display_name,
            email: u.email,
            language: u.language,
        }))
    }

    async fn event_title(&self, event_id: &str) -> anyhow::Result<Option<String>> {
        Ok(self.events.event(event_id).await?.map(|d| d.title))
    }

    async fn ticket_holders(&self, event_id: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.bookings.ticket_holders(event_id).await?)
    }

    async fn ticket_qr_codes(&self, booking_id: &str) -> anyhow::Result<Vec<(String, String)>> {
        let tickets = self.bookings.tickets_with_qr(booking_id).await?;
        Ok(tickets.into_iter().map(|(_, code, _, svg)| (format!("ticket-{code}.svg"), svg)).collect())
    }
}
