//! Register, login, refresh, logout and the issuer's discovery/JWKS documents.

use axum::{
    http::{header::USER_AGENT, HeaderMap, StatusCode},
    Json,
};
use serde::{Deserialize, Serialize};
use tg_platform::{
    http::{ApiJson, ClientIp},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::ToSchema;

use super::State;
use crate::{
    issuer::{hash_opaque_token, Subject},
    CreateUserError, UsersService,
};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: String,
    /// Required when reCAPTCHA is configured.
    #[serde(default)]
    pub recaptcha_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub recaptcha_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
}

/// The answer to a request whose outcome is told by e-mail (so that it reveals nothing about
/// whether an address has an account).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
    /// What happens next, in English.
    pub detail: String,
}

impl Accepted {
    pub(crate) fn new(detail: &str) -> (StatusCode, Json<Accepted>) {
        (StatusCode::ACCEPTED, Json(Accepted { status: "accepted".into(), detail: detail.into() }))
    }
}

/// Register. The answer is the same whether or not the address has an account: a new account gets
/// a link proving the address, and the owner of a taken address a mail saying someone tried. The
/// new account can sign in at once; rights granted by address wait for the proof.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = Accepted, description = "registered, or the address's owner told; see the mail"),
              (status = 422, body = Problem, description = "invalid fields"),
              (status = 429, body = Problem, description = "too many registrations from this client; see `Retry-After`")))]
pub async fn register(
    svc: State,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    // Before anything costly: each registration hashes a password (19 MiB, tens of ms of CPU).
    svc.register_limiter.check(ip).map_err(ApiError::too_many_requests)?;
    if let Some(r) = &svc.recaptcha {
        r.verify(req.recaptcha_token.as_deref(), "register", ip).await?;
    }
    svc.register(&req.email, &req.password, &req.display_name).await.map_err(|e| match e {
        CreateUserError::Email(m) => ApiError::field("email", m),
        CreateUserError::Password(m) => ApiError::field("password", m),
        CreateUserError::DisplayName(m) => ApiError::field("display_name", m),
        CreateUserError::EmailTaken => ApiError::internal("a registration never reports a taken address"),
        CreateUserError::Other(e) => ApiError::from_anyhow(e),
    })?;
    Ok(Accepted::new("check your e-mail: it says how to go on"))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem, description = "bad credentials"),
              (status = 429, body = Problem, description = "too many attempts")))]
pub async fn login(
    svc: State,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let email = req.email.trim().to_lowercase();
    svc.limiter.check(&email, ip).map_err(ApiError::too_many_requests)?;
    if let Some(r) = &svc.recaptcha {
        r.verify(req.recaptcha_token.as_deref(), "login", ip).await?;
    }
    let account = svc.store.account_by_email(&email).await?;
    let ok = crate::password::verify(&req.password, account.as_ref().and_then(|a| a.password_hash.as_deref())).await;
    let account = match account {
        Some(a) if ok => a,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "email or password is incorrect",
            ));
        }
    };
    let session = uuid::Uuid::new_v4().to_string();
    let device = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(device_name);
    let (refresh, hash) = svc.issuer.new_opaque_token();
    svc.store.insert_refresh(&hash, &account.id, &session, refresh_expiry(&svc), device.as_deref()).await?;
    Ok(Json(issue_tokens(&svc, &account.id, &session, refresh).await?))
}

fn refresh_expiry(svc: &UsersService) -> i64 {
    tg_platform::clock::now_ms() + svc.config.refresh_token_ttl.as_millis() as i64
}

/// The device a session is shown by: its User-Agent, printable and cut to 200 characters.
fn device_name(user_agent: &str) -> String {
    user_agent.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The answer carrying `refresh` (already stored) and a new access token of session `session`.
async fn issue_tokens(svc: &UsersService, user_id: &str, session: &str, refresh: String) -> ApiResult<TokenResponse> {
    let Some(account) = svc.store.account_by_id(user_id).await? else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_grant", "account no longer exists"));
    };
    let roles = svc.store.roles(user_id).await?;
    let subject = Subject {
        user_id,
        email: account.email.as_deref(),
        email_verified: account.email_verified_at.is_some(),
        name: &account.display_name,
        roles: &roles,
        session: Some(session),
    };
    let access = svc.issuer.mint_access(&subject).await.map_err(ApiError::from_anyhow)?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        expires_in: svc.config.access_token_ttl.as_secs(),
        token_type: "Bearer".into(),
    })
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem, description = "unknown, expired, revoked or reused token")))]
pub async fn refresh(svc: State, ApiJson(req): ApiJson<RefreshRequest>) -> ApiResult<Json<TokenResponse>> {
    let hash = hash_opaque_token(&req.refresh_token);
    let (refresh, new_hash) = svc.issuer.new_opaque_token();
    let Some(old) = svc.store.rotate_refresh(&hash, &new_hash, refresh_expiry(&svc)).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "refresh token is invalid, expired or revoked",
        ));
    };
    Ok(Json(issue_tokens(&svc, &old.user_id, &old.family_id, refresh).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "the refresh token and its rotation chain are revoked")))]
pub async fn logout(svc: State, ApiJson(req): ApiJson<RefreshRequest>) -> ApiResult<StatusCode> {
    if let Some(family) = svc.store.refresh_family(&hash_opaque_token(&req.refresh_token)).await? {
        svc.store.revoke_family(&family).await?;
    }
    // Unknown tokens get the same answer: logout reveals nothing.
    Ok(StatusCode::NO_CONTENT)
}

/// OAuth 2.0 client-credentials request (RFC 6749 §4.4), form-encoded.
#[derive(Deserialize, ToSchema)]
pub struct ClientCredentialsRequest {
    /// Must be `client_credentials`.
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ServiceTokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Always `internal`: the token opens the services' internal routes and nothing else.
    pub scope: String,
}

/// A service token for a registered service client: short-lived, audience `ticketgw-internal`,
/// scope `internal`. Services use it for calls no user makes (a consumer confirming a booking).
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth",
    request_body(content = ClientCredentialsRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = ServiceTokenResponse),
              (status = 400, body = Problem, description = "not a client-credentials request"),
              (status = 401, body = Problem, description = "unknown client or wrong secret")))]
pub async fn service_token(
    svc: State,
    form: Result<axum::Form<ClientCredentialsRequest>, axum::extract::rejection::FormRejection>,
) -> ApiResult<Json<ServiceTokenResponse>> {
    let axum::Form(req) = form.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    if req.grant_type != "client_credentials" {
        return Err(ApiError::bad_request("unsupported_grant_type", "only client_credentials is supported here"));
    }
    if !svc.service_client_valid(&req.client_id, &req.client_secret) {
        tracing::warn!(client_id = %tg_platform::telemetry::Bounded(&req.client_id), "service token refused");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret"));
    }
    let token = svc.issuer.mint_service(&req.client_id).await.map_err(ApiError::from_anyhow)?;
    Ok(Json(ServiceTokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: crate::issuer::SERVICE_TOKEN_TTL.as_secs(),
        scope: crate::issuer::INTERNAL_SCOPE.into(),
    }))
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "auth",
    responses((status = 200, description = "OpenID Provider metadata of the built-in issuer")))]
pub async fn discovery(svc: State) -> Json<serde_json::Value> {
    Json(svc.discovery())
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "public keys (JWK Set) verifying access tokens")))]
pub async fn jwks(svc: State) -> Json<serde_json::Value> {
    Json(svc.issuer.jwks().await)
}
