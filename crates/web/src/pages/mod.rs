//! Pages, grouped by who uses them. Every handler takes the request's [`Ctx`] and renders a template
//! whose struct holds it as `ctx` (the layout reads language, user and CSRF token from it).

mod account;
mod admin;
mod attendee;
mod organizer;
mod public;
mod security;

use std::sync::Arc;

use askama::Template;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post, put},
    Router,
};

use crate::{
    ctx::{Ctx, Problem},
    Web,
};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/", get(public::home))
        .route("/events", get(public::search))
        .route("/events/{id}", get(public::event_page))
        .route("/events/{id}/calendar.ics", get(public::calendar))
        .route("/offline", get(public::offline))
        .route("/events/{id}/book", post(attendee::book))
        .route("/bookings/{id}", get(attendee::booking))
        .route("/bookings/{id}/pay", post(attendee::pay))
        .route("/bookings/{id}/cancel", post(attendee::cancel))
        .route("/bookings/{id}/refund", post(attendee::refund))
        .route("/payments/{id}", get(attendee::payment))
        .route("/tickets", get(attendee::tickets))
        .route("/login", get(account::login_form).post(account::login))
        .route("/register", get(account::register_form).post(account::register))
        .route("/logout", post(account::logout))
        .route("/lang/{code}", get(account::set_language))
        .route("/account", get(account::account).post(account::update_account))
        .route("/account/organizer", post(account::apply_organizer))
        .route("/account/channels", post(account::update_channels))
        .route("/account/channels/confirm", post(security::confirm_channel))
        .route("/account/verify-email", get(security::verify_form).post(security::verify))
        .route("/account/email/verification", post(security::resend_verification))
        .route("/account/forgot-password", get(security::forgot_form).post(security::forgot))
        .route("/account/reset-password", get(security::reset_form).post(security::reset))
        .route("/account/password", post(security::change_password))
        .route("/account/email", post(security::change_email))
        .route("/account/sessions/{id}/end", post(security::end_session))
        .route("/account/sessions/end-others", post(security::end_other_sessions))
        .route("/account/export.json", get(security::export))
        .route("/account/delete", post(security::delete_account))
        .route("/organizer/events/{id}/staff", post(organizer::set_staff))
        .route("/organizer", get(organizer::my_events))
        .route("/organizer/events/new", get(organizer::new_form).post(organizer::create))
        .route("/organizer/events/{id}", get(organizer::dashboard))
        .route("/organizer/events/{id}/edit", get(organizer::edit_form).post(organizer::update))
        .route("/organizer/events/{id}/lifecycle", post(organizer::lifecycle))
        .route("/organizer/events/{id}/attendees.csv", get(organizer::attendees_csv))
        .route("/organizer/events/{id}/scan", get(organizer::scanner))
        .route(
            "/organizer/events/{id}/banner",
            // The API enforces its own (configurable) limit; this only bounds what is buffered here.
            put(organizer::upload_banner),
        )
        .route("/organizer/events/{id}/checkins", post(organizer::check_in))
        .route("/organizer/events/{id}/checkins/batch", post(organizer::check_in_batch))
        .route("/admin", get(admin::users))
        .route("/admin/users/{id}/roles", post(admin::set_roles))
        .route("/admin/applications", get(admin::applications))
        .route("/admin/applications/{id}/decision", post(admin::decide))
        .route("/admin/events", get(admin::events))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/dead-letters", get(admin::dead_letters))
        .route("/admin/dead-letters/replay", post(admin::replay_dead_letters))
}

/// A rendered page with the UI's security headers. Pages are personal, so shared caches keep none.
pub fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
            h.insert(
                "content-security-policy",
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data: https:; media-src 'self' blob:; \
                     script-src 'self' https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/; \
                     frame-src https://www.google.com/recaptcha/; object-src 'none'; base-uri 'none'; \
                     frame-ancestors 'none'",
                ),
            );
            h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
            h.insert("permissions-policy", HeaderValue::from_static("camera=(self), geolocation=()"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

pub fn ok(template: &impl Template) -> Response {
    render(template, StatusCode::OK)
}

/// After a successful form: go to `to` (303, so a reload does not post again).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: &'a Ctx,
    status: u16,
    heading: String,
    message: String,
}

pub fn error_page(ctx: &Ctx, problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let status = if status.is_success() { StatusCode::INTERNAL_SERVER_ERROR } else { status };
    let heading = match status.as_u16() {
        403 => ctx.t("error-forbidden"),
        404 => ctx.t("error-not-found"),
        400..=499 => ctx.t("error-bad-request"),
        _ => ctx.t("error-internal"),
    };
    let message = if status.is_server_error() { ctx.t("error-internal-detail") } else { problem.message() };
    render(&ErrorPage { ctx, status: status.as_u16(), heading, message }, status)
}

/// Escape a value for a query string or path segment.
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
