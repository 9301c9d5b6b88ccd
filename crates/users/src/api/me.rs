//! The caller's own account.

use axum::Json;
use serde::Deserialize;
use tg_platform::{auth::Principal, http::ApiJson, problem::Problem, ApiError, ApiResult};
use utoipa::ToSchema;

use super::State;
use crate::model::{parse_display_name, parse_language, UserView, Validator};

#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
pub async fn get_me(svc: State, me: Principal) -> ApiResult<Json<UserView>> {
    let mut user = svc.user(&me.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    // Roles are those of the verified token (for external identities, the provider's roles).
    user.roles = me.roles;
    Ok(Json(user))
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
