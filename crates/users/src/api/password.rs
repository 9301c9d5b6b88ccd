//! Forgotten password (a single-use link by e-mail) and change of password.

use axum::{http::StatusCode, Json};
use serde::Deserialize;
use tg_platform::{
    auth::Principal,
    http::{ApiJson, ClientIp},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::ToSchema;

use super::{auth::Accepted, State};

#[derive(Deserialize, ToSchema)]
pub struct ForgotPassword {
    pub email: String,
}

/// Mail a password-reset link (valid 30 minutes, once) to the address if it has an account with a
/// password. The answer is the same either way.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = ForgotPassword,
    responses((status = 202, body = Accepted, description = "a link is on its way if the address has an account"),
              (status = 429, body = Problem, description = "too many requests from this client; see `Retry-After`")))]
pub async fn forgot_password(
    svc: State,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ForgotPassword>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    // Each request may send a mail: as rationed as registrations.
    svc.register_limiter.check(ip).map_err(ApiError::too_many_requests)?;
    svc.forgot_password(&req.email).await?;
    Ok(Accepted::new("if the address has an account, a link to set a new password is on its way"))
}

#[derive(Deserialize, ToSchema)]
pub struct ResetPassword {
    /// The token of the mailed link.
    pub token: String,
    pub password: String,
}

/// Set a new password with a reset link. Every session of the account ends (its refresh tokens stop
/// working; access tokens already out expire within their lifetime).
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetPassword,
    responses((status = 204, description = "the password is set; sign in with it"),
              (status = 400, body = Problem, description = "`invalid_link`: unknown, used or expired"),
              (status = 422, body = Problem, description = "the password does not meet the policy"),
              (status = 429, body = Problem, description = "too many requests from this client")))]
pub async fn reset_password(
    svc: State,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ResetPassword>,
) -> ApiResult<StatusCode> {
    // A password hash per request, and a token to guess: rationed.
    svc.register_limiter.check(ip).map_err(ApiError::too_many_requests)?;
    svc.reset_password(&req.token, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Change the password, proving the current one. Every other session ends; this one goes on.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "account", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 204, description = "changed"),
              (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`wrong_password`, or `external_identity`: the account signs in elsewhere"),
              (status = 422, body = Problem, description = "the new password does not meet the policy"),
              (status = 429, body = Problem, description = "too many attempts")))]
pub async fn change_password(
    svc: State,
    me: Principal,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    // Guessing the current password here is guessing a login.
    svc.limiter.check(&me.user_id, ip).map_err(ApiError::too_many_requests)?;
    svc.change_password(&me.user_id, &req.current_password, &req.new_password, me.session_id.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
