//! The per-request context of a page: language, CSRF token, the signed-in user and a client of the
//! platform's own API that acts as that user.
//!
//! The UI holds no rights of its own: every read and write goes through the same API routes (and so
//! the same authorization and validation) as any other client, in process, with the user's token
//! taken from an HttpOnly cookie.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;
use rand::RngCore;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tg_platform::auth::Role;
use tg_users::{api::TokenResponse, model::UserView};
use tower::ServiceExt;

use crate::{
    i18n::{I18n, Lang},
    Web,
};

pub const ACCESS_COOKIE: &str = "tg_at";
pub const REFRESH_COOKIE: &str = "tg_rt";
pub const CSRF_COOKIE: &str = "tg_csrf";
pub const LANG_COOKIE: &str = "tg_lang";
const REFRESH_MAX_AGE_DAYS: i64 = 30;

/// An API error as the UI sees it: the problem+json the API answered.
#[derive(Clone, Debug, Deserialize, Default)]
pub struct Problem {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub title: String,
    pub detail: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn internal(why: impl std::fmt::Display) -> Problem {
        tracing::error!(%why, "web UI could not use the API");
        Problem { status: 500, code: "internal".into(), title: "Internal error".into(), ..Default::default() }
    }

    /// What to tell the user: the detail, else the title.
    pub fn message(&self) -> String {
        self.detail.clone().unwrap_or_else(|| self.title.clone())
    }

    /// The message for one form field, if the API named it (`field` or a path below it).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == name || e.field.strip_prefix(name).is_some_and(|rest| rest.starts_with(['.', '['])))
            .map(|e| e.message.as_str())
    }
}

/// Everything a page needs about its request. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub lang: Lang,
    /// The token this visitor's forms carry (signed in: bound to the session).
    pub csrf: String,
    /// The cookie's own token, which the sign-out form carries: signing out must work even when the
    /// session it was bound to ended elsewhere (forcing someone out is all a forged one could do).
    pub csrf_cookie: String,
    pub me: Option<UserView>,
    /// Path and query of this request (for "back here after login").
    pub here: String,
    pub recaptcha_site_key: Option<String>,
    token: Option<String>,
    peer: Option<ConnectInfo<SocketAddr>>,
    web: Arc<Web>,
}

impl Ctx {
    /// Largest banner upload taken.
    pub fn max_banner_bytes(&self) -> usize {
        self.web.config.max_banner_bytes
    }

    pub fn t(&self, key: &str) -> String {
        self.web.i18n.text(self.lang, key, None)
    }

    /// A text with a number argument `n` (plurals).
    pub fn tn(&self, key: &str, n: impl std::borrow::Borrow<i64>) -> String {
        let mut args = fluent_bundle::FluentArgs::new();
        args.set("n", *n.borrow());
        self.web.i18n.text(self.lang, key, Some(&args))
    }

    /// A text with one string argument `value`.
    pub fn ta(&self, key: &str, value: &str) -> String {
        let mut args = fluent_bundle::FluentArgs::new();
        args.set("value", value.to_owned());
        self.web.i18n.text(self.lang, key, Some(&args))
    }

    /// Appended to asset URLs (`?v=`), so a new release's files replace cached ones.
    pub fn asset_version(&self) -> &'static str {
        crate::assets::VERSION
    }

    pub fn signed_in(&self) -> bool {
        self.me.is_some()
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.me.as_ref().is_some_and(|m| m.roles.contains(&role))
    }

    pub fn is_organizer(&self) -> bool {
        self.has_role(Role::Organizer) || self.has_role(Role::Admin)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    pub fn i18n(&self) -> &I18n {
        &self.web.i18n
    }

    pub fn web(&self) -> &Web {
        &self.web
    }

    /// Call the API as the signed-in user (or anonymously). Returns the status and body. Pages ask for
    /// a language explicitly (`?lang=`): an event being edited must come back untranslated.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Problem> {
        call_api(&self.web, self.peer, self.token.as_deref(), method, path, body, idempotency_key).await
    }

    /// Send `body` of `content_type` (an upload) to the API as the signed-in user.
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Problem> {
        let mut req = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Body::from(body)).map_err(Problem::internal)?;
        send_to_api(&self.web, self.peer, req).await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Problem> {
        let (status, _, bytes) = self.call(method, path, body, idempotency_key).await?;
        if !status.is_success() {
            let mut problem: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
            problem.status = status.as_u16();
            return Err(problem);
        }
        let bytes = if bytes.is_empty() { Bytes::from_static(b"null") } else { bytes };
        serde_json::from_slice(&bytes).map_err(|e| Problem::internal(format!("{path}: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Problem> {
        self.json(Method::GET, path, None, None).await
    }

    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
        idempotency_key: Option<&str>,
    ) -> Result<T, Problem> {
        let body = serde_json::to_vec(body).map_err(Problem::internal)?;
        self.json(method, path, Some(body), idempotency_key).await
    }

    /// Turn an API problem into this page's error (a login redirect for 401).
    pub fn fail(&self, problem: Problem) -> PageError {
        PageError(Box::new((problem, self.clone())))
    }

    /// Require a signed-in user, else send them to the login page and back here.
    pub fn require_login(&self) -> Result<&UserView, PageError> {
        self.me
            .as_ref()
            .ok_or_else(|| self.fail(Problem { status: 401, code: "unauthorized".into(), ..Default::default() }))
    }

    /// The login page, with this page to come back to.
    pub fn login_url(&self) -> String {
        format!("/login?next={}", url::form_urlencoded::byte_serialize(self.here.as_bytes()).collect::<String>())
    }
}

#[allow(clippy::too_many_arguments)]
async fn call_api(
    web: &Web,
    peer: Option<ConnectInfo<SocketAddr>>,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    idempotency_key: Option<&str>,
) -> Result<(StatusCode, HeaderMap, Bytes), Problem> {
    let mut req = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(key) = idempotency_key {
        req = req.header("idempotency-key", key);
    }
    let req = req.body(Body::from(body.unwrap_or_default())).map_err(Problem::internal)?;
    send_to_api(web, peer, req).await
}

async fn send_to_api(
    web: &Web,
    peer: Option<ConnectInfo<SocketAddr>>,
    mut req: Request,
) -> Result<(StatusCode, HeaderMap, Bytes), Problem> {
    // The API throttles logins by client address; it is the browser's, not ours.
    if let Some(peer) = peer {
        req.extensions_mut().insert(peer);
        // When the API runs in other processes, this is how they learn it (they trust it only there).
        if let Ok(ip) = header::HeaderValue::from_str(&peer.0.ip().to_string()) {
            req.headers_mut().insert("x-forwarded-for", ip);
        }
    }
    let res = web.api.clone().oneshot(req).await.map_err(Problem::internal)?;
    let (parts, body) = res.into_parts();
    let bytes = to_bytes(body, 16 * 1024 * 1024).await.map_err(Problem::internal)?;
    Ok((parts.status, parts.headers, bytes))
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Ctx>().cloned().ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// A page's failure, shown as an error page in the user's language (boxed: it travels in `Result`s).
pub struct PageError(Box<(Problem, Ctx)>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (problem, ctx) = *self.0;
        if problem.status == 401 {
            return Redirect::to(&ctx.login_url()).into_response();
        }
        crate::pages::error_page(&ctx, &problem)
    }
}

pub type PageResult = Result<Response, PageError>;

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A claim of a JWT, read without verifying it: only for what the API checks again (when to refresh,
/// which session a form belongs to). The API verifies every token it is given.
fn unverified_claim(jwt: &str, claim: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get(claim).cloned()
}

/// Seconds until a JWT's `exp`.
fn seconds_left(jwt: &str) -> Option<i64> {
    Some(unverified_claim(jwt, "exp")?.as_i64()? - jiff::Timestamp::now().as_second())
}

/// The CSRF token of a signed-in visitor's forms: the cookie's random token bound to the sign-in
/// session (`sid` of the HttpOnly access token). A token planted in the cookie jar (a neighbouring
/// site, a sign-in on a shared computer) does not give the forms' token, which needs the session too;
/// a new session gets new tokens. Anonymous forms (sign-in, registration) use the cookie's token.
fn session_csrf(cookie_token: &str, access_token: &str) -> Option<String> {
    let sid = unverified_claim(access_token, "sid")?;
    let sid = sid.as_str()?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in ["tg-csrf", cookie_token, sid] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish()))
}

/// The name a cookie goes by: with the `__Host-` prefix over HTTPS, which browsers accept only from a
/// secure origin, for the whole site and no other (sub)domain: a neighbour cannot plant or widen it.
pub fn cookie_name(web: &Web, name: &'static str) -> std::borrow::Cow<'static, str> {
    if web.config.secure_cookies {
        format!("__Host-{name}").into()
    } else {
        name.into()
    }
}

fn cookie(web: &Web, name: &'static str, value: String, max_age_secs: i64, same_site: SameSite) -> Cookie<'static> {
    Cookie::build((cookie_name(web, name), value))
        .path("/")
        .http_only(true)
        .secure(web.config.secure_cookies)
        .same_site(same_site)
        .max_age(time::Duration::seconds(max_age_secs))
        .build()
}

/// Cookies holding a fresh pair of tokens.
pub fn token_cookies(web: &Web, tokens: &TokenResponse) -> [Cookie<'static>; 2] {
    [
        cookie(web, ACCESS_COOKIE, tokens.access_token.clone(), tokens.expires_in as i64, SameSite::Lax),
        cookie(web, REFRESH_COOKIE, tokens.refresh_token.clone(), REFRESH_MAX_AGE_DAYS * 86_400, SameSite::Lax),
    ]
}

/// Cookies that end a session.
pub fn cleared_token_cookies(web: &Web) -> [Cookie<'static>; 2] {
    [
        cookie(web, ACCESS_COOKIE, String::new(), 0, SameSite::Lax),
        cookie(web, REFRESH_COOKIE, String::new(), 0, SameSite::Lax),
    ]
}

pub fn lang_cookie(web: &Web, lang: Lang) -> Cookie<'static> {
    let mut c = cookie(web, LANG_COOKIE, lang.code().to_owned(), 365 * 86_400, SameSite::Lax);
    c.set_http_only(false);
    c
}

/// Refreshes of one refresh token share one answer for a while: the API rotates refresh tokens and
/// treats a reuse as theft (revoking the session), and a browser often sends several requests at once
/// (tabs, polling) when the access token has just expired.
#[derive(Default)]
pub struct Refreshes {
    recent: tokio::sync::Mutex<Vec<RecentRefresh>>,
}

/// A refresh token's SHA-256, when it was used, and what the API answered.
type RecentRefresh = (ring::digest::Digest, std::time::Instant, Result<TokenResponse, u16>);

const REFRESH_SHARED_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// New tokens for `refresh_token`, or the status the API refused it with.
async fn refresh_session(
    web: &Web,
    peer: Option<ConnectInfo<SocketAddr>>,
    refresh_token: &str,
) -> Result<TokenResponse, u16> {
    let key = ring::digest::digest(&ring::digest::SHA256, refresh_token.as_bytes());
    // Held across the call, so concurrent refreshes of the same token wait for the first one.
    let mut recent = web.refreshes.recent.lock().await;
    recent.retain(|(_, at, _)| at.elapsed() < REFRESH_SHARED_FOR);
    if let Some((_, _, answer)) = recent.iter().find(|(k, _, _)| k.as_ref() == key.as_ref()) {
        return answer.clone();
    }
    let body = serde_json::to_vec(&serde_json::json!({ "refresh_token": refresh_token })).unwrap_or_default();
    let answer = match call_api(web, peer, None, Method::POST, "/api/v1/auth/refresh", Some(body), None).await {
        Ok((status, _, body)) if status.is_success() => serde_json::from_slice(&body).map_err(|_| 500),
        Ok((status, _, _)) => Err(status.as_u16()),
        Err(p) => Err(p.status),
    };
    recent.push((key, std::time::Instant::now(), answer.clone()));
    answer
}

/// Where "sign in and come back" should return: this page for GETs; for a form post, the page the
/// form was on (the Referer on this host), else home.
fn return_path(req: &Request) -> String {
    if req.method() == Method::GET {
        return req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    }
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    req.headers()
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| host.is_some_and(|h| u.host_str().is_some_and(|uh| h == uh || h.starts_with(&format!("{uh}:")))))
        .map(|u| u[url::Position::BeforePath..].to_owned())
        .unwrap_or_else(|| "/".into())
}

/// Middleware: builds the [`Ctx`] of every UI request, refreshing an expiring session, and sets the
/// cookies that changed (unless the page set them itself, as sign-in and sign-out do).
pub async fn context(State(web): State<Arc<Web>>, jar: CookieJar, mut req: Request, next: Next) -> Response {
    let mut set = Vec::new();
    let lang = jar
        .get(&cookie_name(&web, LANG_COOKIE))
        .and_then(|c| Lang::parse(c.value()))
        .or_else(|| {
            let header = req.headers().get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
            Some(Lang::from_accept_language(header))
        })
        .unwrap_or(Lang::En);
    let csrf = match jar.get(&cookie_name(&web, CSRF_COOKIE)).map(|c| c.value().to_owned()).filter(|v| is_csrf_token(v))
    {
        Some(token) => token,
        None => {
            let token = random_token();
            // Lax, not Strict: arriving from another site (a payment page, an e-mail) must not replace
            // the token of forms open in other tabs.
            set.push(cookie(&web, CSRF_COOKIE, token.clone(), 365 * 86_400, SameSite::Lax));
            token
        }
    };
    let peer =
        tg_platform::http::client_ip(req.extensions(), req.headers()).map(|ip| ConnectInfo(SocketAddr::new(ip, 0)));
    let mut token = jar.get(&cookie_name(&web, ACCESS_COOKIE)).map(|c| c.value().to_owned()).filter(|v| !v.is_empty());
    let refresh = jar.get(&cookie_name(&web, REFRESH_COOKIE)).map(|c| c.value().to_owned()).filter(|v| !v.is_empty());
    // Signing out needs no fresh session (and must not get one back); its form carries the cookie's token.
    let signing_out = req.uri().path() == "/logout";
    if !signing_out && token.as_deref().and_then(seconds_left).is_none_or(|left| left < 30) {
        if let Some(refresh_token) = refresh {
            match refresh_session(&web, peer, &refresh_token).await {
                Ok(tokens) => {
                    token = Some(tokens.access_token.clone());
                    set.extend(token_cookies(&web, &tokens));
                }
                // Refused: the session is over. Anything else (overload, outage) may pass.
                Err(401) => {
                    token = None;
                    set.extend(cleared_token_cookies(&web));
                }
                Err(_) => token = None,
            }
        }
    }
    let mut ctx = Ctx {
        lang,
        csrf_cookie: csrf.clone(),
        csrf,
        me: None,
        here: return_path(&req),
        recaptcha_site_key: web.config.recaptcha_site_key.clone(),
        token,
        peer,
        web: web.clone(),
    };
    if ctx.token.is_some() {
        match ctx.get::<UserView>("/api/v1/me").await {
            Ok(me) => ctx.me = Some(me),
            Err(p) if p.status == 401 => {
                ctx.token = None;
                set.extend(cleared_token_cookies(&web));
            }
            Err(p) => return crate::pages::error_page(&ctx, &p),
        }
    }
    if let Some(bound) = ctx.token.as_deref().and_then(|t| session_csrf(&ctx.csrf, t)) {
        ctx.csrf = bound;
    }
    req.extensions_mut().insert(ctx);
    let mut res = next.run(req).await;
    let set_by_page: Vec<String> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split('=').next().map(str::to_owned))
        .collect();
    for c in set.into_iter().filter(|c| !set_by_page.iter().any(|name| name == c.name())) {
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// A token we issued: 32 random bytes, base64url (a planted cookie of another shape is replaced).
fn is_csrf_token(v: &str) -> bool {
    v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A submitted form whose CSRF token matched the visitor's cookie (double submit). Fields are kept
/// in order, with repeats (checkboxes, ticket rows).
pub struct CsrfForm {
    pub ctx: Ctx,
    fields: Vec<(String, String)>,
}

impl CsrfForm {
    pub fn get(&self, name: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// The trimmed value, or `None` when empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }
}

pub fn csrf_matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

impl<S: Send + Sync> FromRequest<S> for CsrfForm {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = req.extensions().get::<Ctx>().cloned().ok_or(StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let signing_out = req.uri().path() == "/logout";
        let bad = |detail: &str| {
            ctx.fail(Problem {
                status: 400,
                code: "bad_form".into(),
                detail: Some(detail.into()),
                ..Default::default()
            })
            .into_response()
        };
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|_| bad("the form could not be read"))?;
        let given = fields.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
        let expected = if signing_out { &ctx.csrf_cookie } else { &ctx.csrf };
        if !csrf_matches(expected, given) {
            return Err(ctx
                .fail(Problem {
                    status: 403,
                    code: "csrf".into(),
                    detail: Some(ctx.t("error-csrf")),
                    ..Default::default()
                })
                .into_response());
        }
        if fields.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err(bad("the form contains a NUL character"));
        }
        Ok(CsrfForm { ctx, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_in_visitors_csrf_token_needs_the_session() {
        let jwt = |claims: &str| format!("h.{}.s", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims));
        let a = session_csrf("cookie", &jwt(r#"{"sid":"session-a"}"#)).unwrap();
        assert_ne!(a, "cookie");
        assert_eq!(Some(a.clone()), session_csrf("cookie", &jwt(r#"{"sid":"session-a"}"#)));
        assert_ne!(Some(a.clone()), session_csrf("cookie", &jwt(r#"{"sid":"session-b"}"#)), "another session");
        assert_ne!(Some(a), session_csrf("planted", &jwt(r#"{"sid":"session-a"}"#)), "another cookie");
        assert_eq!(session_csrf("cookie", &jwt(r#"{"sub":"u"}"#)), None, "no session: the cookie's token");
    }

    #[test]
    fn field_errors_match_the_field_and_paths_below_it() {
        let p = Problem {
            errors: vec![
                FieldError { field: "ticketing.types[0].price".into(), message: "must be ≥ 0".into() },
                FieldError { field: "title".into(), message: "required".into() },
            ],
            ..Default::default()
        };
        assert_eq!(p.field("title"), Some("required"));
        assert_eq!(p.field("ticketing.types[0]"), Some("must be ≥ 0"));
        assert_eq!(p.field("ticketing.types[1]"), None);
        assert_eq!(p.field("tit"), None);
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", ""));
        assert!(!csrf_matches("", ""));
    }

    #[test]
    fn token_lifetime_is_read_from_the_payload() {
        let exp = jiff::Timestamp::now().as_second() + 600;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp}}}"));
        let left = seconds_left(&format!("x.{payload}.y")).expect("exp");
        assert!((590..=600).contains(&left));
        assert_eq!(seconds_left("not a jwt"), None);
    }
}
