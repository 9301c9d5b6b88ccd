//! Internal routes: what other services ask of the users service when they run in other processes.
//! Only service tokens open them (`ServiceCaller`); the gateway never routes `/internal`.

use std::sync::Arc;

use axum::{extract::State, routing::get, Json, Router};
use tg_platform::{auth::ServiceCaller, http::ApiPath, ApiError, ApiResult};

use crate::{
    model::{OrganizerProfile, UserView},
    UsersService,
};

pub fn router(svc: Arc<UsersService>) -> Router {
    Router::new()
        .route("/internal/v1/users/{id}", get(user))
        .route("/internal/v1/users/{id}/organizer", get(organizer_of_user))
        .route("/internal/v1/organizers/{id}", get(organizer))
        .with_state(svc)
}

async fn user(
    State(svc): State<Arc<UsersService>>,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    svc.user(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("user"))
}

async fn organizer_of_user(
    State(svc): State<Arc<UsersService>>,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrganizerProfile>> {
    svc.organizer_of(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("organizer"))
}

async fn organizer(
    State(svc): State<Arc<UsersService>>,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrganizerProfile>> {
    svc.organizer(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("organizer"))
}
