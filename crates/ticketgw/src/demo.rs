//! Demo data: the demo accounts and the fixture event, its dates moved into the future.

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

pub async fn seed(app: &App) -> anyhow::Result<()> {
    let organizer_user = app.users.seed_demo().await?;
    if app.events.event("evt-001").await?.is_some() {
        return Ok(());
    }
    let doc = serde_json::from_value(fixture_on_sale_now())?;
    let organizer = Principal {
        user_id: organizer_user,
        email: None,
        display_name: None,
        roles: vec![Role::User, Role::Organizer],
    };
    app.events.create(&organizer, doc).await.map_err(|e| anyhow::anyhow!("creating the demo event: {e}"))?;
    Ok(())
}
