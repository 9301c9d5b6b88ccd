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

pub async fn seed(app: &App) -> anyhow::Result<()> {
    let organizer_user = app.users.seed_demo().await?;
    if app.events.event("evt-001").await?.is_some() {
        return Ok(());
    }
    // Next year's edition, so that it is bookable now.
    let year = jiff::Zoned::now().year() as i32;
    let doc = serde_json::from_value(fixture_shifted(year - 2025 + 1))?;
    let organizer = Principal {
        user_id: organizer_user,
        email: None,
        display_name: None,
        roles: vec![Role::User, Role::Organizer],
    };
    app.events.create(&organizer, doc).await.map_err(|e| anyhow::anyhow!("creating the demo event: {e}"))?;
    Ok(())
}
