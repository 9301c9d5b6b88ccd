//! The caller's own account.

use axum::{http::StatusCode, Json};
use serde::Deserialize;
use tg_platform::{
    auth::Principal,
    http::{ApiJson, ClientIp},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::ToSchema;

use super::State;
use crate::model::{parse_display_name, parse_language, UserView, Validator};

#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
pub async fn get_me(svc: State, me: Principal) -> ApiResult<Json<UserView>> {
    let mut user = svc.user(&me.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    // Roles are those of the verified token (for external identities, the provider's roles), and so
    // is an external identity's proof of its address (the provider's `email_verified`).
    user.roles = me.roles;
    if user.identity_provider != "local" {
        user.email_verified = me.email_verified && user.email == me.email;
    }
    Ok(Json(user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMe {
    /// The account's password (accounts of an outside identity provider have none here).
    #[serde(default)]
    pub password: Option<String>,
}

/// Delete the account. What accounting law keeps stays, without the person: paid bookings, tickets
/// and payments remain under the account's id, whose name and address are erased; sessions,
/// notices and notice channels go. Organizers ask an admin, who hands over their events first.
#[utoipa::path(delete, path = "/api/v1/me", tag = "account", security(("bearer" = [])), request_body = DeleteMe,
    responses((status = 204, description = "deleted; every session ended"),
              (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`wrong_password`"),
              (status = 409, body = Problem, description = "`organizer_account`: an admin closes organizer accounts"),
              (status = 429, body = Problem, description = "too many attempts")))]
pub async fn delete_me(
    svc: State,
    me: Principal,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<DeleteMe>,
) -> ApiResult<StatusCode> {
    svc.limiter.check(&me.user_id, ip).map_err(ApiError::too_many_requests)?;
    svc.delete_account(&me.user_id, req.password.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    pub display_name: Option<String>,
    /// `en` or `km`.
    pub language: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "account", security(("bearer" = [])), request_body = UpdateMe,
    responses((status = 200, body = UserView), (status = 422, body = Problem)))]
pub async fn update_me(svc: State, me: Principal, ApiJson(req): ApiJson<UpdateMe>) -> ApiResult<Json<UserView>> {
    let mut v = Validator::default();
    let name = req.display_name.as_deref().map(parse_display_name).and_then(|r| v.check("display_name", r));
    let lang = req.language.as_deref().map(parse_language).and_then(|r| v.check("language", r));
    v.finish()?;
    svc.store.update_profile(&me.user_id, name.as_deref(), lang.as_deref()).await?;
    get_me(svc, me).await
}
