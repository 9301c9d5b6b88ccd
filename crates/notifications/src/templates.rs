//! The notices, in English and Khmer; the user's language chooses (English when it is neither).

use tg_contracts::{
    AccountMail, Booking, BookingConfirmed, BookingExpired, ContractError, Event, EventCancelled, EventUpdated,
    Message, PaymentRefunded, UserDeleted, UserRegistered,
};
use tg_platform::bus::DomainEvent;

/// What a domain event tells users, read through its contract.
#[derive(Clone, Debug)]
pub enum News {
    Welcome(UserRegistered),
    Confirmed(Booking),
    Expired(Booking),
    Refunded(PaymentRefunded),
    EventUpdated(Event),
    EventCancelled(Event),
    /// A mail about the account, to one address, e-mail only (never into the mailbox).
    Account(AccountMail),
    /// The user is gone: forget them.
    Deleted(UserDeleted),
}

impl News {
    /// The news in `m`; `None` for a message users do not hear about.
    pub fn read(m: &DomainEvent) -> Result<Option<News>, ContractError> {
        Ok(Some(match m.routing_key.as_str() {
            UserRegistered::ROUTING_KEY => News::Welcome(UserRegistered::from_event(m)?),
            BookingConfirmed::ROUTING_KEY => News::Confirmed(BookingConfirmed::from_event(m)?.0),
            BookingExpired::ROUTING_KEY => News::Expired(BookingExpired::from_event(m)?.0),
            PaymentRefunded::ROUTING_KEY => News::Refunded(PaymentRefunded::from_event(m)?),
            EventUpdated::ROUTING_KEY => News::EventUpdated(EventUpdated::from_event(m)?.0),
            EventCancelled::ROUTING_KEY => News::EventCancelled(EventCancelled::from_event(m)?.0),
            AccountMail::ROUTING_KEY => News::Account(AccountMail::from_event(m)?),
            UserDeleted::ROUTING_KEY => News::Deleted(UserDeleted::from_event(m)?),
            _ => return Ok(None),
        }))
    }

    /// The routing keys of the news, for the consumer's bindings.
    pub const KEYS: &'static [&'static str] = &[
        UserRegistered::ROUTING_KEY,
        BookingConfirmed::ROUTING_KEY,
        BookingExpired::ROUTING_KEY,
        PaymentRefunded::ROUTING_KEY,
        EventUpdated::ROUTING_KEY,
        EventCancelled::ROUTING_KEY,
        AccountMail::ROUTING_KEY,
        UserDeleted::ROUTING_KEY,
    ];

    /// The event it is about, if any.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            News::Confirmed(b) | News::Expired(b) => Some(&b.event_id),
            News::EventUpdated(e) | News::EventCancelled(e) => Some(&e.event_id),
            News::Welcome(_) | News::Refunded(_) | News::Account(_) | News::Deleted(_) => None,
        }
    }
}

/// What a notice says: (subject, plain-text body).
pub struct Notice {
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

/// What a notice is written from besides the news.
pub struct Facts<'a> {
    pub name: &'a str,
    pub event_title: &'a str,
    pub public_url: &'a str,
}

fn money(cents: i64, currency: &str) -> String {
    if currency == "KHR" {
        format!("{} ៛", cents / 100)
    } else {
        format!("{}.{:02} {currency}", cents / 100, cents % 100)
    }
}

/// The notice telling `news` in `language`.
pub fn render(news: &News, language: &str, f: &Facts) -> Notice {
    let km = language == "km";
    if let News::Account(mail) = news {
        return crate::account_notices::render(mail);
    }
    // The web UI's "My tickets" page (the QR codes, kept offline once opened), not the JSON API.
    let tickets_url = format!("{}/tickets", f.public_url.trim_end_matches('/'));
    let (kind, subject, body) = match news {
        News::Welcome(_) if km => (
            "welcome",
            "សូមស្វាគមន៍មកកាន់ Ticket Gateway".to_owned(),
            format!("សួស្តី {},\n\nគណនីរបស់អ្នកត្រូវបានបង្កើតរួចរាល់។ ស្វែងរកព្រឹត្តិការណ៍ និងកក់សំបុត្របានភ្លាមៗ។", f.name),
        ),
        News::Welcome(_) => (
            "welcome",
            "Welcome to Ticket Gateway".to_owned(),
            format!("Hello {},\n\nYour account is ready. Find events and book tickets any time.", f.name),
        ),
        News::Confirmed(b) if km => (
            "booking_confirmed",
            format!("សំបុត្ររបស់អ្នកសម្រាប់ {}", f.event_title),
            format!(
                "សួស្តី {},\n\nការកក់ {} ត្រូវបានបញ្ជាក់ ({})។ កូដ QR នៃសំបុត្ររបស់អ្នកភ្ជាប់មកជាមួយ ហើយក៏មាននៅ {tickets_url} ផងដែរ។",
                f.name,
                b.booking_id,
                total(b)
            ),
        ),
        News::Confirmed(b) => (
            "booking_confirmed",
            format!("Your tickets for {}", f.event_title),
            format!(
                "Hello {},\n\nBooking {} is confirmed ({}). Your tickets' QR codes are attached and always at {tickets_url}.",
                f.name,
                b.booking_id,
                total(b)
            ),
        ),
        News::Expired(b) if km => (
            "hold_expired",
            format!("ការកក់របស់អ្នកសម្រាប់ {} បានផុតកំណត់", f.event_title),
            format!("សួស្តី {},\n\nការកក់ {} មិនត្រូវបានបង់ប្រាក់ទាន់ពេល ដូច្នេះកៅអីត្រូវបានដោះលែងវិញ។", f.name, b.booking_id),
        ),
        News::Expired(b) => (
            "hold_expired",
            format!("Your hold for {} expired", f.event_title),
            format!("Hello {},\n\nBooking {} was not paid in time, so its seats were released.", f.name, b.booking_id),
        ),
        News::Refunded(r) if km => (
            "refund",
            "ការសងប្រាក់វិញរបស់អ្នក".to_owned(),
            format!(
                "សួស្តី {},\n\nយើងបានសងប្រាក់ {} វិញសម្រាប់ការកក់ {}។",
                f.name,
                money(r.refund_cents, &r.payment.currency),
                r.payment.booking_id
            ),
        ),
        News::Refunded(r) => (
            "refund",
            "Your refund".to_owned(),
            format!(
                "Hello {},\n\nWe refunded {} for booking {}.",
                f.name,
                money(r.refund_cents, &r.payment.currency),
                r.payment.booking_id
            ),
        ),
        News::EventUpdated(_) if km => (
            "event_updated",
            format!("{} មានការផ្លាស់ប្ដូរ", f.event_title),
            format!("សួស្តី {},\n\nព័ត៌មាននៃព្រឹត្តិការណ៍ {} ត្រូវបានកែប្រែ។ សូមពិនិត្យមើលកាលវិភាគ និងទីកន្លែងម្ដងទៀត។", f.name, f.event_title),
        ),
        News::EventUpdated(_) => (
            "event_updated",
            format!("{} has changed", f.event_title),
            format!("Hello {},\n\nThe details of {} were updated. Please check the schedule and venue again.", f.name, f.event_title),
        ),
        News::EventCancelled(_) if km => (
            "event_cancelled",
            format!("{} ត្រូវបានលុបចោល", f.event_title),
            format!("សួស្តី {},\n\nសូមអភ័យទោស ព្រឹត្តិការណ៍ {} ត្រូវបានលុបចោល។ អ្នករៀបចំនឹងទាក់ទងអ្នកអំពីការសងប្រាក់វិញ។", f.name, f.event_title),
        ),
        News::EventCancelled(_) => (
            "event_cancelled",
            format!("{} is cancelled", f.event_title),
            format!("Hello {},\n\nWe are sorry: {} is cancelled. The organizer will contact you about refunds.", f.name, f.event_title),
        ),
        News::Account(_) | News::Deleted(_) => ("none", String::new(), String::new()),
    };
    Notice { kind, subject, body }
}

/// A booking's total, as the payer paid it.
fn total(b: &Booking) -> String {
    money((b.total_amount * 100.0).round() as i64, &b.currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_chooses_the_template_and_unknown_keys_are_silent() {
        let booking = Booking {
            booking_id: "b1".into(),
            event_id: "e1".into(),
            user_id: "u1".into(),
            status: "confirmed".into(),
            total_amount: 25.5,
            currency: "USD".into(),
            items: vec![],
        };
        let news = News::read(&BookingConfirmed(booking.clone()).to_event()).unwrap().unwrap();
        assert_eq!(news.event_id(), Some("e1"));
        let f = Facts { name: "Dara", event_title: "Tech Conference", public_url: "http://x" };
        let en = render(&news, "en", &f);
        assert_eq!(en.subject, "Your tickets for Tech Conference");
        assert!(en.body.contains("Booking b1 is confirmed (25.50 USD)"), "{}", en.body);
        assert!(en.body.contains("always at http://x/tickets."), "links to the tickets page: {}", en.body);
        let km = render(&news, "km", &f);
        assert!(km.subject.starts_with("សំបុត្រ"));
        assert_eq!(render(&news, "fr", &f).subject, en.subject);
        let held = tg_contracts::BookingHeld(booking).to_event();
        assert!(News::read(&held).unwrap().is_none(), "holds are not news");
        let mut broken = BookingConfirmed(Booking { total_amount: 1.0, ..news_booking() }).to_event();
        broken.payload.as_object_mut().unwrap().remove("user_id");
        assert!(News::read(&broken).is_err());
        assert_eq!(money(4_000_000, "KHR"), "40000 ៛");
    }

    fn news_booking() -> Booking {
        Booking {
            booking_id: "b2".into(),
            event_id: "e1".into(),
            user_id: "u1".into(),
            status: "confirmed".into(),
            total_amount: 1.0,
            currency: "USD".into(),
            items: vec![],
        }
    }
}
