//! Proving an address (the mailed link) and changing it.

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
pub struct VerifyEmail {
    /// The token of the mailed link.
    pub token: String,
}

/// Use a verification link: the address is proven (for a change of address, it becomes the
/// account's, and the old one is told). Tokens issued before carry the old state until refreshed.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmail,
    responses((status = 204, description = "the address is verified"),
              (status = 400, body = Problem, description = "`invalid_link`: unknown, used or expired"),
              (status = 409, body = Problem, description = "`email_taken`: the new address got an account meanwhile"),
              (status = 429, body = Problem, description = "too many requests from this client")))]
pub async fn verify_email(
    svc: State,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<VerifyEmail>,
) -> ApiResult<StatusCode> {
    svc.register_limiter.check(ip).map_err(ApiError::too_many_requests)?;
    svc.verify_email(&req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a new verification link to the account's address (nothing when it is verified).
#[utoipa::path(post, path = "/api/v1/me/email/verification", tag = "account", security(("bearer" = [])),
    responses((status = 202, body = Accepted), (status = 401, body = Problem),
              (status = 429, body = Problem, description = "too many requests from this client")))]
pub async fn resend_verification(
    svc: State,
    me: Principal,
    ClientIp(ip): ClientIp,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    svc.register_limiter.check(ip).map_err(ApiError::too_many_requests)?;
    svc.resend_verification(&me.user_id).await?;
    Ok(Accepted::new("if the address is not verified yet, a link is on its way"))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangeEmail {
    pub new_email: String,
    pub current_password: String,
}

/// Change the address, proving the password: the new address gets a link (valid 24 hours) that makes
/// the change. Until it is used the account keeps its address.
#[utoipa::path(post, path = "/api/v1/me/email", tag = "account", security(("bearer" = [])), request_body = ChangeEmail,
    responses((status = 202, body = Accepted, description = "the new address was written to"),
              (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`wrong_password`, or `external_identity`"),
              (status = 422, body = Problem, description = "not an address, or already the account's"),
              (status = 429, body = Problem, description = "too many attempts")))]
pub async fn change_email(
    svc: State,
    me: Principal,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ChangeEmail>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    svc.limiter.check(&me.user_id, ip).map_err(ApiError::too_many_requests)?;
    svc.change_email(&me.user_id, &req.current_password, &req.new_email).await?;
    Ok(Accepted::new("follow the link sent to the new address to finish the change"))
}
