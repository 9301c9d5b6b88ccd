//! Sign-in, registration, language and the account page.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use axum_extra::extract::{cookie::Cookie, CookieJar};
use serde::Deserialize;
use serde_json::json;
use tg_notifications::{
    api::Mailbox,
    store::{ChannelSettings, MailboxEntry},
};
use tg_users::{
    api::{SessionView, Sessions, TokenResponse},
    model::{OrganizerApplication, UserView},
};

use super::{enc, ok, render, see_other};
use crate::{
    ctx::{
        cleared_token_cookies, cookie_name, lang_cookie, token_cookies, CsrfForm, Ctx, PageResult, Problem,
        REFRESH_COOKIE,
    },
    format,
    i18n::Lang,
};

/// Where to go after signing in: only a path on this site. No `//host`, no scheme, and no control
/// characters or backslashes anywhere (browsers drop tabs and newlines, and read `\` as `/`).
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.chars().any(|c| c.is_control() || c == '\\' || c.is_whitespace());
    if ok {
        next
    } else {
        "/"
    }
}

pub(super) fn with_cookies(mut res: Response, cookies: impl IntoIterator<Item = Cookie<'static>>) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    registered: Option<String>,
    /// Just set a new password with a reset link.
    #[serde(default)]
    reset: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    /// `login` or `register`.
    mode: &'static str,
    next: String,
    email: String,
    display_name: String,
    problem: Option<Problem>,
    /// Just registered; sign in now.
    registered: bool,
    /// Just set a new password; sign in with it.
    reset: bool,
}

impl LoginPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.problem.as_ref().and_then(|p| p.field(field))
    }

    /// A message that belongs to no single field.
    fn general_error(&self) -> Option<String> {
        self.problem.as_ref().filter(|p| p.errors.is_empty()).map(|p| p.message())
    }
}

fn empty_form(ctx: Ctx, mode: &'static str, q: NextQuery) -> Response {
    let next = safe_next(&q.next).to_owned();
    let (registered, reset) = (q.registered.is_some(), q.reset.is_some());
    let (email, display_name) = (String::new(), String::new());
    ok(&LoginPage { ctx, mode, next, email, display_name, problem: None, registered, reset })
}

pub async fn login_form(ctx: Ctx, Query(q): Query<NextQuery>) -> Response {
    empty_form(ctx, "login", q)
}

pub async fn register_form(ctx: Ctx, Query(q): Query<NextQuery>) -> Response {
    empty_form(ctx, "register", q)
}

async fn sign_in(form: CsrfForm, mode: &'static str) -> PageResult {
    let ctx = form.ctx.clone();
    let next = safe_next(form.get("next")).to_owned();
    let email = form.get("email").trim().to_owned();
    let recaptcha = form.opt("g-recaptcha-response");
    let password = form.get("password");
    if mode == "register" {
        let body = json!({
            "email": email, "password": password, "display_name": form.get("display_name"),
            "recaptcha_token": recaptcha,
        });
        if let Err(p) = ctx.send::<serde_json::Value>(Method::POST, "/api/v1/auth/register", &body, None).await {
            return retry_page(ctx, mode, next, email, form.get("display_name"), p);
        }
    }
    // A fresh registration signs in at once (reCAPTCHA tokens are single-use, so none is sent twice).
    let recaptcha = if mode == "register" { None } else { recaptcha };
    let body = json!({ "email": email, "password": password, "recaptcha_token": recaptcha });
    match ctx.send::<TokenResponse>(Method::POST, "/api/v1/auth/login", &body, None).await {
        Ok(tokens) => Ok(with_cookies(see_other(&next), token_cookies(ctx.web(), &tokens))),
        // The account exists; signing in needs its own reCAPTCHA answer.
        Err(p) if mode == "register" && p.status < 500 => {
            Ok(see_other(&format!("/login?registered=1&next={}", super::enc(&next))))
        }
        Err(p) => retry_page(ctx, mode, next, email, form.get("display_name"), p),
    }
}

fn retry_page(ctx: Ctx, mode: &'static str, next: String, email: String, name: &str, p: Problem) -> PageResult {
    if p.status >= 500 {
        return Err(ctx.fail(p));
    }
    let mut p = p;
    if p.status == 401 {
        p.detail = Some(ctx.t("login-failed"));
    }
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let display_name = name.to_owned();
    let page = LoginPage { ctx, mode, next, email, display_name, problem: Some(p), registered: false, reset: false };
    Ok(render(&page, status))
}

pub async fn login(form: CsrfForm) -> PageResult {
    sign_in(form, "login").await
}

pub async fn register(form: CsrfForm) -> PageResult {
    sign_in(form, "register").await
}

pub async fn logout(jar: CookieJar, form: CsrfForm) -> Response {
    let ctx = &form.ctx;
    // Revoke the refresh token's chain too; the cookies go either way.
    if let Some(refresh) = jar.get(&cookie_name(ctx.web(), REFRESH_COOKIE)).filter(|c| !c.value().is_empty()) {
        let body = serde_json::to_vec(&json!({ "refresh_token": refresh.value() })).unwrap_or_default();
        let _ = ctx.call(Method::POST, "/api/v1/auth/logout", Some(body), None).await;
    }
    with_cookies(see_other("/"), cleared_token_cookies(ctx.web()))
}

/// Switch the UI's language (a cookie only: a link must not change the profile, whose language the
/// notices follow; the account form does that).
pub async fn set_language(ctx: Ctx, Path(code): Path<String>, Query(q): Query<NextQuery>) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return ctx.fail(Problem { status: 404, ..Default::default() }).into_response();
    };
    with_cookies(see_other(safe_next(&q.next)), [lang_cookie(ctx.web(), lang)])
}

/// The organizer application form as typed.
#[derive(Default)]
struct ApplyForm {
    name: String,
    contact_email: String,
    contact_phone: String,
    website: String,
    message: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    ctx: Ctx,
    me: UserView,
    channels: ChannelSettings,
    /// Each channel given, and whether its code came back.
    channel_states: Vec<ChannelState>,
    sessions: Vec<SessionView>,
    apply: ApplyForm,
    application: Option<OrganizerApplication>,
    messages: Vec<(String, MailboxEntry)>,
    /// Link to the next, older page of messages.
    older_messages: Option<String>,
    problem: Option<Problem>,
    saved: bool,
}

/// A notice channel as the account page shows it.
struct ChannelState {
    /// `telegram` or `sms`, as the API names it.
    channel: &'static str,
    label: &'static str,
    code_label: &'static str,
    given: bool,
    confirmed: bool,
}

fn channel_states(c: &ChannelSettings) -> Vec<ChannelState> {
    vec![
        ChannelState {
            channel: "telegram",
            label: "field-telegram",
            code_label: "channel-code-telegram",
            given: c.telegram_chat_id.is_some(),
            confirmed: c.telegram_confirmed,
        },
        ChannelState {
            channel: "sms",
            label: "field-sms-phone",
            code_label: "channel-code-sms",
            given: c.phone.is_some(),
            confirmed: c.phone_confirmed,
        },
    ]
}

impl AccountPage {
    /// Not an organizer, and no application waiting for a decision.
    fn may_apply(&self) -> bool {
        !self.ctx.is_organizer() && self.application.as_ref().is_none_or(|a| a.status != "pending")
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.problem.as_ref().and_then(|p| p.field(field))
    }
}

/// Messages shown per page of the account page.
const MESSAGES_PER_PAGE: usize = 10;

pub(super) async fn account_page(
    ctx: Ctx,
    problem: Option<Problem>,
    saved: bool,
    typed: Option<&CsrfForm>,
    messages_cursor: Option<&str>,
) -> PageResult {
    let mut me = ctx.require_login()?.clone();
    let mut apply = ApplyForm::default();
    if let Some(f) = typed {
        let keep = |name: &str| f.get(name).to_owned();
        if !f.get("display_name").is_empty() {
            me.display_name = keep("display_name");
        }
        apply = ApplyForm {
            name: keep("name"),
            contact_email: keep("contact_email"),
            contact_phone: keep("contact_phone"),
            website: keep("website"),
            message: keep("message"),
        };
    }
    let application = ctx.get::<OrganizerApplication>("/api/v1/me/organizer-application").await.ok();
    let mut path = format!("/api/v1/me/messages?limit={MESSAGES_PER_PAGE}");
    if let Some(c) = messages_cursor.filter(|c| !c.is_empty()) {
        path += &format!("&cursor={}", enc(c));
    }
    let messages: Mailbox = match ctx.get(&path).await {
        Ok(page) => page,
        // A stale or hand-made cursor: show the newest messages instead of an error.
        Err(p) if p.status == 400 || p.status == 422 => {
            ctx.get(&format!("/api/v1/me/messages?limit={MESSAGES_PER_PAGE}")).await.map_err(|p| ctx.fail(p))?
        }
        Err(p) => return Err(ctx.fail(p)),
    };
    let mut channels: ChannelSettings = ctx.get("/api/v1/me/notification-channels").await.map_err(|p| ctx.fail(p))?;
    if let Some(f) = typed.filter(|f| f.fields().iter().any(|(k, _)| k == "phone")) {
        channels.telegram_chat_id = f.opt("telegram_chat_id");
        channels.phone = f.opt("phone");
    }
    let sessions = ctx.get::<Sessions>("/api/v1/me/sessions").await.map_err(|p| ctx.fail(p))?.items;
    let older_messages = messages.next_cursor.map(|c| format!("/account?messages={}#inbox-h", enc(&c)));
    let messages = messages.items.into_iter().map(|m| (format::millis(m.created_at), m)).collect();
    let status = problem.as_ref().and_then(|p| StatusCode::from_u16(p.status).ok()).unwrap_or(StatusCode::OK);
    let channel_states = channel_states(&channels);
    let page = AccountPage {
        ctx,
        me,
        channels,
        channel_states,
        sessions,
        apply,
        application,
        messages,
        older_messages,
        problem,
        saved,
    };
    Ok(render(&page, status))
}

#[derive(Deserialize)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
    /// Cursor of the page of messages to show (newest when absent).
    #[serde(default)]
    messages: Option<String>,
}

pub async fn account(ctx: Ctx, Query(q): Query<SavedQuery>) -> PageResult {
    account_page(ctx, None, q.saved.is_some(), None, q.messages.as_deref()).await
}

pub async fn update_account(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let body = json!({ "display_name": form.get("display_name"), "language": form.get("language") });
    match ctx.send::<UserView>(Method::PATCH, "/api/v1/me", &body, None).await {
        Ok(me) => {
            let lang = Lang::parse(&me.language).unwrap_or(ctx.lang);
            Ok(with_cookies(see_other("/account?saved=1"), [lang_cookie(ctx.web(), lang)]))
        }
        Err(p) if p.status < 500 && p.status != 401 => account_page(ctx, Some(p), false, Some(&form), None).await,
        Err(p) => Err(ctx.fail(p)),
    }
}

pub async fn update_channels(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let body = json!({ "telegram_chat_id": form.opt("telegram_chat_id"), "phone": form.opt("phone") });
    match ctx.send::<serde_json::Value>(Method::PUT, "/api/v1/me/notification-channels", &body, None).await {
        Ok(_) => Ok(see_other("/account?saved=1")),
        Err(p) if p.status < 500 && p.status != 401 => account_page(ctx, Some(p), false, Some(&form), None).await,
        Err(p) => Err(ctx.fail(p)),
    }
}

pub async fn apply_organizer(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let body = json!({
        "name": form.get("name"), "contact_email": form.get("contact_email"),
        "contact_phone": form.opt("contact_phone"), "website": form.opt("website"), "message": form.opt("message"),
    });
    match ctx.send::<serde_json::Value>(Method::POST, "/api/v1/organizer-applications", &body, None).await {
        Ok(_) => Ok(see_other("/account?saved=1")),
        Err(p) if p.status < 500 && p.status != 401 => account_page(ctx, Some(p), false, Some(&form), None).await,
        Err(p) => Err(ctx.fail(p)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(super::safe_next("/events/x?y=1"), "/events/x?y=1");
        assert_eq!(super::safe_next("//evil.example"), "/");
        assert_eq!(super::safe_next("/\\evil.example"), "/");
        assert_eq!(super::safe_next("/\t/evil.example"), "/");
        assert_eq!(super::safe_next("/x\n/y"), "/");
        assert_eq!(super::safe_next("https://evil.example"), "/");
        assert_eq!(super::safe_next(""), "/");
    }
}
