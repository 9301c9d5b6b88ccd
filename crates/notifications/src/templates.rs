//! The notices, in English and Khmer; the user's language chooses (English when it is neither).

use serde_json::Value;

/// What a notice says: (subject, plain-text body).
pub struct Notice {
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

/// Facts a notice is written from.
pub struct Facts<'a> {
    pub name: &'a str,
    pub event_title: &'a str,
    pub payload: &'a Value,
    pub public_url: &'a str,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

fn money(cents: i64, currency: &str) -> String {
    if currency == "KHR" {
        format!("{} ៛", cents / 100)
    } else {
        format!("{}.{:02} {currency}", cents / 100, cents % 100)
    }
}

/// The notice for `routing_key`, or `None` when this message is not one users hear about.
pub fn render(routing_key: &str, language: &str, f: &Facts) -> Option<Notice> {
    let km = language == "km";
    let p = f.payload;
    let booking = s(p, "booking_id");
    // The web UI's "My tickets" page (the QR codes, kept offline once opened), not the JSON API.
    let tickets_url = format!("{}/tickets", f.public_url.trim_end_matches('/'));
    let total = p["total_amount"].as_f64().map(|a| (a * 100.0).round() as i64).unwrap_or(0);
    let currency = s(p, "currency");
    let (kind, subject, body) = match routing_key {
        "user.registered" if km => (
            "welcome",
            "សូមស្វាគមន៍មកកាន់ Ticket Gateway".to_owned(),
            format!("សួស្តី {},\n\nគណនីរបស់អ្នកត្រូវបានបង្កើតរួចរាល់។ ស្វែងរកព្រឹត្តិការណ៍ និងកក់សំបុត្របានភ្លាមៗ។", f.name),
        ),
        "user.registered" => (
            "welcome",
            "Welcome to Ticket Gateway".to_owned(),
            format!("Hello {},\n\nYour account is ready. Find events and book tickets any time.", f.name),
        ),
        "booking.confirmed" if km => (
            "booking_confirmed",
            format!("សំបុត្ររបស់អ្នកសម្រាប់ {}", f.event_title),
            format!(
                "សួស្តី {},\n\nការកក់ {booking} ត្រូវបានបញ្ជាក់ ({})។ កូដ QR នៃសំបុត្ររបស់អ្នកភ្ជាប់មកជាមួយ ហើយក៏មាននៅ {tickets_url} ផងដែរ។",
                f.name,
                money(total, currency)
            ),
        ),
        "booking.confirmed" => (
            "booking_confirmed",
            format!("Your tickets for {}", f.event_title),
            format!(
                "Hello {},\n\nBooking {booking} is confirmed ({}). Your tickets' QR codes are attached and always at {tickets_url}.",
                f.name,
                money(total, currency)
            ),
        ),
        "booking.expired" if km => (
            "hold_expired",
            format!("ការកក់របស់អ្នកសម្រាប់ {} បានផុតកំណត់", f.event_title),
            format!("សួស្តី {},\n\nការកក់ {booking} មិនត្រូវបានបង់ប្រាក់ទាន់ពេល ដូច្នេះកៅអីត្រូវបានដោះលែងវិញ។", f.name),
        ),
        "booking.expired" => (
            "hold_expired",
            format!("Your hold for {} expired", f.event_title),
            format!("Hello {},\n\nBooking {booking} was not paid in time, so its seats were released.", f.name),
        ),
        "payment.refunded" if km => (
            "refund",
            "ការសងប្រាក់វិញរបស់អ្នក".to_owned(),
            format!(
                "សួស្តី {},\n\nយើងបានសងប្រាក់ {} វិញសម្រាប់ការកក់ {booking}។",
                f.name,
                money(p["refund_cents"].as_i64().unwrap_or(0), currency)
            ),
        ),
        "payment.refunded" => (
            "refund",
            "Your refund".to_owned(),
            format!(
                "Hello {},\n\nWe refunded {} for booking {booking}.",
                f.name,
                money(p["refund_cents"].as_i64().unwrap_or(0), currency)
            ),
        ),
        "event.updated" if km => (
            "event_updated",
            format!("{} មានការផ្លាស់ប្ដូរ", f.event_title),
            format!("សួស្តី {},\n\nព័ត៌មាននៃព្រឹត្តិការណ៍ {} ត្រូវបានកែប្រែ។ សូមពិនិត្យមើលកាលវិភាគ និងទីកន្លែងម្ដងទៀត។", f.name, f.event_title),
        ),
        "event.updated" => (
            "event_updated",
            format!("{} has changed", f.event_title),
            format!("Hello {},\n\nThe details of {} were updated. Please check the schedule and venue again.", f.name, f.event_title),
        ),
        "event.cancelled" if km => (
            "event_cancelled",
            format!("{} ត្រូវបានលុបចោល", f.event_title),
            format!("សួស្តី {},\n\nសូមអភ័យទោស ព្រឹត្តិការណ៍ {} ត្រូវបានលុបចោល។ អ្នករៀបចំនឹងទាក់ទងអ្នកអំពីការសងប្រាក់វិញ។", f.name, f.event_title),
        ),
        "event.cancelled" => (
            "event_cancelled",
            format!("{} is cancelled", f.event_title),
            format!("Hello {},\n\nWe are sorry: {} is cancelled. The organizer will contact you about refunds.", f.name, f.event_title),
        ),
        _ => return None,
    };
    Some(Notice { kind, subject, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_chooses_the_template_and_unknown_keys_are_silent() {
        let payload = serde_json::json!({"booking_id": "b1", "total_amount": 25.5, "currency": "USD"});
        let f = Facts { name: "Dara", event_title: "Tech Conference", payload: &payload, public_url: "http://x" };
        let en = render("booking.confirmed", "en", &f).unwrap();
        assert_eq!(en.subject, "Your tickets for Tech Conference");
        assert!(en.body.contains("25.50 USD"));
        assert!(en.body.contains("always at http://x/tickets."), "links to the tickets page: {}", en.body);
        let km = render("booking.confirmed", "km", &f).unwrap();
        assert!(km.subject.starts_with("សំបុត្រ"));
        assert_eq!(render("booking.confirmed", "fr", &f).unwrap().subject, en.subject);
        assert!(render("booking.held", "en", &f).is_none());
        assert_eq!(money(4_000_000, "KHR"), "40000 ៛");
    }
}
