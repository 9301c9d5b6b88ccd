//! Account security pages: proving the address, a forgotten password, password and address
//! changes, sessions, notice-channel codes, data export and deletion. Each calls the API as the
//! user; the single-use links mailed to people land here and are used only by a form post (a
//! link preview or a mail scanner that opens the link must not use it up).

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::{header, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{render, see_other};
use crate::ctx::{cleared_token_cookies, CsrfForm, Ctx, PageResult, Problem};

/// Which link page: `verify`, `forgot`, `reset`.
#[derive(Template)]
#[template(path = "account_link.html")]
struct LinkPage {
    ctx: Ctx,
    mode: &'static str,
    token: String,
    problem: Option<Problem>,
    /// The request went through (a mail is on its way / the address is verified).
    done: bool,
}

impl LinkPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.problem.as_ref().and_then(|p| p.field(field))
    }
    fn general_error(&self) -> Option<String> {
        self.problem.as_ref().filter(|p| p.errors.is_empty()).map(|p| p.message())
    }
    fn title_key(&self) -> &'static str {
        match self.mode {
            "verify" => "verify-title",
            "forgot" => "forgot-title",
            _ => "reset-title",
        }
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn link_page(ctx: Ctx, mode: &'static str, token: String, problem: Option<Problem>, done: bool) -> Response {
    let status = problem.as_ref().and_then(|p| StatusCode::from_u16(p.status).ok()).unwrap_or(StatusCode::OK);
    render(&LinkPage { ctx, mode, token, problem, done }, status)
}

/// Keep a 4xx on the page; anything else is the error page.
fn on_page(ctx: &Ctx, p: Problem) -> Result<Problem, crate::ctx::PageError> {
    if p.status < 500 {
        Ok(p)
    } else {
        Err(ctx.fail(p))
    }
}

pub async fn verify_form(ctx: Ctx, Query(q): Query<TokenQuery>) -> Response {
    link_page(ctx, "verify", q.token, None, false)
}

pub async fn verify(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    let token = form.get("token").to_owned();
    match ctx.send::<Value>(Method::POST, "/api/v1/auth/verify-email", &json!({ "token": token }), None).await {
        Ok(_) => Ok(link_page(ctx, "verify", String::new(), None, true)),
        Err(p) => Ok(link_page(ctx.clone(), "verify", token, Some(on_page(&ctx, p)?), false)),
    }
}

pub async fn forgot_form(ctx: Ctx) -> Response {
    link_page(ctx, "forgot", String::new(), None, false)
}

pub async fn forgot(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    let body = json!({ "email": form.get("email").trim() });
    match ctx.send::<Value>(Method::POST, "/api/v1/auth/forgot-password", &body, None).await {
        Ok(_) => Ok(link_page(ctx, "forgot", String::new(), None, true)),
        Err(p) => Ok(link_page(ctx.clone(), "forgot", String::new(), Some(on_page(&ctx, p)?), false)),
    }
}

pub async fn reset_form(ctx: Ctx, Query(q): Query<TokenQuery>) -> Response {
    link_page(ctx, "reset", q.token, None, false)
}

pub async fn reset(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    let token = form.get("token").to_owned();
    let body = json!({ "token": token, "password": form.get("password") });
    match ctx.send::<Value>(Method::POST, "/api/v1/auth/reset-password", &body, None).await {
        Ok(_) => Ok(see_other("/login?reset=1")),
        Err(p) => Ok(link_page(ctx.clone(), "reset", token, Some(on_page(&ctx, p)?), false)),
    }
}

/// Where the account page goes after a security action: back to its section, or with the problem.
async fn back(form: &CsrfForm, result: Result<Value, Problem>, section: &str) -> PageResult {
    let ctx = form.ctx.clone();
    match result {
        Ok(_) => Ok(see_other(&format!("/account?saved=1#{section}"))),
        Err(p) if p.status < 500 && p.status != 401 => {
            super::account::account_page(ctx, Some(p), false, Some(form), None).await
        }
        Err(p) => Err(ctx.fail(p)),
    }
}

pub async fn resend_verification(form: CsrfForm) -> PageResult {
    form.ctx.require_login()?;
    let sent = form.ctx.send::<Value>(Method::POST, "/api/v1/me/email/verification", &json!({}), None).await;
    back(&form, sent, "profile-h").await
}

pub async fn change_password(form: CsrfForm) -> PageResult {
    form.ctx.require_login()?;
    let body = json!({ "current_password": form.get("current_password"), "new_password": form.get("new_password") });
    let changed = form.ctx.send::<Value>(Method::POST, "/api/v1/me/password", &body, None).await;
    back(&form, changed, "security-h").await
}

pub async fn change_email(form: CsrfForm) -> PageResult {
    form.ctx.require_login()?;
    let body = json!({ "new_email": form.get("new_email").trim(), "current_password": form.get("email_password") });
    let changed = form.ctx.send::<Value>(Method::POST, "/api/v1/me/email", &body, None).await;
    back(&form, changed, "security-h").await
}

pub async fn end_session(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    form.ctx.require_login()?;
    let path = format!("/api/v1/me/sessions/{}", super::enc(&id));
    let ended = form.ctx.send::<Value>(Method::DELETE, &path, &json!({}), None).await;
    back(&form, ended, "sessions-h").await
}

pub async fn end_other_sessions(form: CsrfForm) -> PageResult {
    form.ctx.require_login()?;
    let ended = form.ctx.send::<Value>(Method::DELETE, "/api/v1/me/sessions?keep_current=true", &json!({}), None).await;
    back(&form, ended, "sessions-h").await
}

pub async fn confirm_channel(form: CsrfForm) -> PageResult {
    form.ctx.require_login()?;
    let body = json!({ "channel": form.get("channel"), "code": form.get("code").trim() });
    let confirmed = form.ctx.send::<Value>(Method::POST, "/api/v1/me/notification-channels/confirm", &body, None).await;
    back(&form, confirmed, "channels-h").await
}

pub async fn delete_account(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    // As typed: a password may begin or end with spaces.
    let password = Some(form.get("password")).filter(|p| !p.is_empty());
    let body = json!({ "password": password });
    match ctx.send::<Value>(Method::DELETE, "/api/v1/me", &body, None).await {
        Ok(_) => Ok(super::account::with_cookies(see_other("/?deleted=1"), cleared_token_cookies(ctx.web()))),
        Err(p) => back(&form, Err(p), "delete-h").await,
    }
}

/// Every page of a cursor-paginated list of the user's (at most 100 pages).
async fn all_pages(ctx: &Ctx, path: &str) -> Result<Vec<Value>, Problem> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&cursor={}", super::enc(c)),
            None => format!("{path}{sep}limit=100"),
        };
        let page: Value = ctx.get(&url).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    Ok(items)
}

/// Everything the platform keeps about the user, as one JSON document to download.
pub async fn export(ctx: Ctx) -> PageResult {
    ctx.require_login()?;
    let fail = |p: Problem| ctx.fail(p);
    let bookings = all_pages(&ctx, "/api/v1/me/bookings").await.map_err(fail)?;
    let mut payments = Vec::new();
    for id in bookings.iter().filter_map(|b| b["id"].as_str()) {
        let of_booking =
            ctx.get::<Value>(&format!("/api/v1/payments?booking_id={}", super::enc(id))).await.map_err(fail)?;
        payments.extend(of_booking["items"].as_array().cloned().unwrap_or_default());
    }
    let doc = json!({
        "exported_at": jiff::Timestamp::now().to_string(),
        "account": ctx.get::<Value>("/api/v1/me").await.map_err(fail)?,
        "sessions": ctx.get::<Value>("/api/v1/me/sessions").await.map_err(fail)?["items"],
        "bookings": bookings,
        "payments": payments,
        "tickets": ctx.get::<Value>("/api/v1/me/tickets").await.map_err(fail)?,
        "notices": all_pages(&ctx, "/api/v1/me/messages").await.map_err(fail)?,
        "notice_channels": ctx.get::<Value>("/api/v1/me/notification-channels").await.map_err(fail)?,
        "organizer_application": ctx.get::<Value>("/api/v1/me/organizer-application").await.ok(),
    });
    let body = serde_json::to_vec_pretty(&doc).map_err(|e| ctx.fail(Problem::internal(e)))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"ticket-gateway-my-data.json\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
