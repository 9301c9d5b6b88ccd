//! The web UI: server-rendered pages (askama templates, htmx for partial updates) over the platform's
//! own API, in English and Khmer, installable as a PWA. Routes are grouped by who uses them:
//! `pages::public` (discovery), `pages::attendee` (booking, paying, tickets), `pages::account`
//! (sign-in, profile), `pages::organizer` (events, sales, door scanner) and `pages::admin`. Pages read
//! the API's responses as the owning services' own types (their views and lists), not copies of them.

pub mod assets;
pub mod calendar;
pub mod ctx;
pub mod format;
pub mod i18n;
pub mod pages;

use std::sync::Arc;

use axum::{middleware, Router};

/// Settings of the UI.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Where the platform is reached (no trailing slash), for links that leave the site (calendar files).
    pub public_url: String,
    /// reCAPTCHA v2 site key; when set, the login and register forms show the widget.
    pub recaptcha_site_key: Option<String>,
    /// Payment providers to offer (`sandbox`, `khqr`, `stripe`).
    pub payment_providers: Vec<String>,
    /// Largest banner upload taken (`MAX_BANNER_BYTES`).
    pub max_banner_bytes: usize,
}

/// Shared state of the UI.
pub struct Web {
    /// The API routes (already behind the bearer-token check), called in process.
    api: Router,
    i18n: i18n::I18n,
    config: WebConfig,
    refreshes: ctx::Refreshes,
}

/// The UI's routes. `api` is the platform's API router, which every page calls as its user.
pub fn router(api: Router, config: WebConfig) -> Router {
    let web = Arc::new(Web { api, i18n: i18n::I18n::default(), config, refreshes: ctx::Refreshes::default() });
    pages::routes()
        .layer(middleware::from_fn_with_state(web.clone(), ctx::context))
        .merge(assets::routes())
        .with_state(web)
}
