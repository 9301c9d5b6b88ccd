//! Organizer applications (a user asks to sell events) and organizer profiles.

use axum::{http::StatusCode, Json};
use serde::Deserialize;
use tg_platform::{
    auth::{Principal, Role},
    db::is_unique_violation,
    http::{ApiJson, ApiPath},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::ToSchema;

use super::State;
use crate::{
    model::{parse_phone, parse_url, Email, OrganizerApplication, OrganizerProfile, Validator},
    store::ProfileInput,
};

/// Organizer profile fields, as in the event document's `organizer`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    pub name: String,
    pub logo: Option<String>,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub website: Option<String>,
    /// Why the applicant wants to organize events (applications only).
    #[serde(default)]
    pub message: Option<String>,
}

impl ProfileRequest {
    fn validate(&self) -> Result<ProfileInput, ApiError> {
        let mut v = Validator::default();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            v.check::<()>("name", Err("must be 1 to 200 characters".into()));
        }
        let email = v.check("contact_email", Email::parse(&self.contact_email));
        let logo = self.logo.as_deref().map(parse_url).and_then(|r| v.check("logo", r));
        let phone = self.contact_phone.as_deref().map(parse_phone).and_then(|r| v.check("contact_phone", r));
        let website = self.website.as_deref().map(parse_url).and_then(|r| v.check("website", r));
        if self.message.as_ref().is_some_and(|m| m.chars().count() > 2000) {
            v.check::<()>("message", Err("must be at most 2000 characters".into()));
        }
        v.finish()?;
        Ok(ProfileInput {
            name: name.to_owned(),
            logo,
            contact_email: email.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            contact_phone: phone,
            website,
        })
    }
}

#[utoipa::path(post, path = "/api/v1/organizer-applications", tag = "organizers", security(("bearer" = [])),
    request_body = ProfileRequest,
    responses((status = 201, body = OrganizerApplication), (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`email_unverified`: the account's address is not proven yet"),
              (status = 409, body = Problem, description = "already organizer or pending"),
              (status = 422, body = Problem)))]
pub async fn apply(
    svc: State,
    me: Principal,
    ApiJson(req): ApiJson<ProfileRequest>,
) -> ApiResult<(StatusCode, Json<OrganizerApplication>)> {
    let input = req.validate()?;
    if me.has_role(Role::Organizer) {
        return Err(ApiError::conflict("already_organizer", "you are already an organizer"));
    }
    // An organizer is reached, and paid out, through their address: it must be theirs.
    let verified = svc.user(&me.user_id).await?.is_some_and(|u| u.email_verified) || me.verified_email().is_some();
    if !verified {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "email_unverified",
            "verify your e-mail address first (the link we sent; it can be sent again)",
        ));
    }
    let message = req.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    match svc.store.insert_application(&me.user_id, &input, message).await {
        Ok(app) => {
            svc.store
                .audit(
                    Some(&me.user_id),
                    "organizer_application.submitted",
                    Some(&me.user_id),
                    &serde_json::json!({"application_id": app.id}),
                )
                .await?;
            Ok((StatusCode::CREATED, Json(app)))
        }
        Err(e) if is_unique_violation(&e) => {
            Err(ApiError::conflict("application_pending", "you already have a pending application"))
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/me/organizer-application", tag = "organizers", security(("bearer" = [])),
    responses((status = 200, body = OrganizerApplication), (status = 404, body = Problem)))]
pub async fn my_application(svc: State, me: Principal) -> ApiResult<Json<OrganizerApplication>> {
    svc.store.latest_application(&me.user_id).await?.map(Json).ok_or_else(|| ApiError::not_found("application"))
}

#[utoipa::path(get, path = "/api/v1/me/organizer", tag = "organizers", security(("bearer" = [])),
    responses((status = 200, body = OrganizerProfile), (status = 404, body = Problem)))]
pub async fn my_profile(svc: State, me: Principal) -> ApiResult<Json<OrganizerProfile>> {
    svc.store.organizer_by_user(&me.user_id).await?.map(Json).ok_or_else(|| ApiError::not_found("organizer profile"))
}

#[utoipa::path(put, path = "/api/v1/me/organizer", tag = "organizers", security(("bearer" = [])), request_body = ProfileRequest,
    responses((status = 200, body = OrganizerProfile), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_my_profile(
    svc: State,
    me: Principal,
    ApiJson(req): ApiJson<ProfileRequest>,
) -> ApiResult<Json<OrganizerProfile>> {
    let input = req.validate()?;
    if !svc.store.update_organizer(&me.user_id, &input).await? {
        return Err(ApiError::not_found("organizer profile"));
    }
    my_profile(svc, me).await
}

#[utoipa::path(get, path = "/api/v1/organizers/{id}", tag = "organizers", params(("id" = String, Path)),
    responses((status = 200, body = OrganizerProfile), (status = 404, body = Problem)))]
pub async fn public_profile(svc: State, ApiPath(id): ApiPath<String>) -> ApiResult<Json<OrganizerProfile>> {
    svc.store.organizer_by_id(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("organizer"))
}
