//! Demo data: the demo accounts, the fixture event with its dates moved so it is on sale now, and two
//! more events (riel prices and Khmer texts; free and online).

use tg_platform::auth::{Principal, Role};

use crate::app::App;

/// The specification's example event, exactly as shipped in `fixtures/`.
pub const FIXTURE_EVENT: &str = include_str!("../../../fixtures/event-tech-conference-2025.json");

/// The fixture with every 2025 date moved `years` later (all its dates are in 2025, none on 29 February).
pub fn fixture_shifted(years: i32) -> serde_json::Value {
    let text = FIXTURE_EVENT.replace("\"2025-", &format!("\"{}-", 2025 + years));
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

/// The fixture event with every instant moved by the same amount, so that now is 2025-09-20 in its
/// timeline: booking is open, the standard and VIP tickets are on sale (early bird is over), and the
/// event is about six weeks away. Offsets (+07:00) are kept.
pub fn fixture_on_sale_now() -> serde_json::Value {
    use jiff::{tz::TimeZone, Timestamp};
    let pivot: Timestamp = "2025-09-20T00:00:00+07:00".parse().expect("valid instant");
    let shift = Timestamp::now().duration_since(pivot);
    let phnom_penh = TimeZone::fixed(jiff::tz::offset(7));
    let mut doc: serde_json::Value = serde_json::from_str(FIXTURE_EVENT).expect("fixture is valid JSON");
    fn walk(v: &mut serde_json::Value, f: &dyn Fn(&str) -> Option<String>) {
        match v {
            serde_json::Value::String(s) => {
                if let Some(moved) = f(s) {
                    *s = moved;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(i, f)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| walk(i, f)),
            _ => {}
        }
    }
    walk(&mut doc, &|s| {
        let t: Timestamp = s.strip_prefix("2025-").and(s.parse().ok())?;
        let moved = t.checked_add(shift).ok()?;
        Some(moved.to_zoned(phnom_penh.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    });
    doc
}

/// Two more demo events beside the fixture, so the catalog shows riel prices, Khmer texts, a free
/// online event and more than one category.
fn more_demo_events() -> Vec<serde_json::Value> {
    use serde_json::json;
    let base = fixture_on_sale_now();
    let mut music = base.clone();
    music["id"] = json!("evt-demo-music");
    music["slug"] = json!("angkor-music-night");
    music["priority"] = json!(0);
    music["title"] = json!("Angkor Music Night");
    music["summary"] = json!("Traditional and modern Khmer music under the stars.");
    music["description"] =
        json!("An evening of pinpeat, chapei dang veng and Phnom Penh's new bands, with street food.");
    music["localizations"] = json!({"km": {"title": "រាត្រីតន្ត្រីអង្គរ",
        "summary": "តន្ត្រីខ្មែរបុរាណ និងសម័យទំនើប ក្រោមពន្លឺផ្កាយ។", "description": null}});
    music["category"] = json!({"id": "cat-music", "name": "Music"});
    music["tags"] = json!(["music", "khmer", "outdoor"]);
    music["venue"] = json!({"type": "physical", "name": "Angkor Night Market Stage", "address": "Sivatha Blvd, Siem Reap",
        "city": "Siem Reap", "latitude": 13.3547, "longitude": 103.8559, "online_url": null});
    music["ticketing"]["max_tickets_per_user"] = json!(6);
    music["ticketing"]["total_capacity"] = json!(350);
    let window = (base["datetime"]["booking_start"].clone(), base["datetime"]["booking_end"].clone());
    music["ticketing"]["types"] = json!([
        {"id": "general", "name": "General", "price": 20000.0, "currency": "KHR", "quantity": 300,
         "benefits": ["Standing area"], "refundable": true, "available_from": window.0, "available_until": window.1},
        {"id": "front", "name": "Front row", "price": 60000.0, "currency": "KHR", "quantity": 50,
         "benefits": ["Seat near the stage", "One drink"], "refundable": false, "available_from": window.0,
         "available_until": window.1}
    ]);
    music["media"] = json!({"banner": null, "gallery": [], "video": null});
    let mut meetup = base;
    meetup["id"] = json!("evt-demo-meetup");
    meetup["slug"] = json!("phnom-penh-rust-meetup");
    meetup["priority"] = json!(0);
    meetup["title"] = json!("Phnom Penh Rust Meetup (online)");
    meetup["summary"] = json!("Talks on building fast, safe services in Rust. Free, online.");
    meetup["description"] = json!("Two short talks and questions. The link is sent with your ticket.");
    meetup["localizations"] = json!({});
    meetup["tags"] = json!(["rust", "meetup", "online"]);
    meetup["venue"] = json!({"type": "online", "name": null, "address": null, "city": null, "latitude": null,
        "longitude": null, "online_url": "https://meet.example.com/rust-pp"});
    meetup["ticketing"]["total_capacity"] = json!(500);
    meetup["ticketing"]["types"] = json!([
        {"id": "free", "name": "Free seat", "price": 0.0, "currency": "USD", "quantity": 500, "benefits": [],
         "refundable": true, "available_from": null, "available_until": null}
    ]);
    meetup["media"] = json!({"banner": null, "gallery": [], "video": null});
    vec![music, meetup]
}

pub async fn seed(app: &App) -> anyhow::Result<()> {
    let organizer_user = app.users.seed_demo().await?;
    let organizer = Principal::user(organizer_user, vec![Role::User, Role::Organizer]);
    let mut events = vec![fixture_on_sale_now()];
    events.extend(more_demo_events());
    for doc in events {
        let id = doc["id"].as_str().unwrap_or_default().to_owned();
        if app.events.event(&id).await?.is_some() {
            continue;
        }
        let doc = serde_json::from_value(doc)?;
        app.events.create(&organizer, doc).await.map_err(|e| anyhow::anyhow!("creating demo event {id}: {e}"))?;
    }
    Ok(())
}
