//! Internal routes: what other services ask of the events service when they run in other processes.
//! The gateway never routes `/internal`; every route needs a token (a service's, or the user's for
//! a question about that user).

use std::sync::Arc;

use axum::{extract::State, routing::get, Json, Router};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::{Principal, ServiceCaller},
    http::ApiPath,
    ApiError, ApiResult,
};

use crate::{document::EventDocument, EventsService};

/// Whether the caller manages an event.
#[derive(Serialize, Deserialize)]
pub struct Manages {
    pub manages: bool,
}

pub fn router(svc: Arc<EventsService>) -> Router {
    Router::new()
        .route("/internal/v1/events/{key}", get(event))
        .route("/internal/v1/events/{key}/manages", get(manages))
        .with_state(svc)
}

/// The stored document by id or slug, whatever its status (bookings' read model is filled from it).
async fn event(
    State(svc): State<Arc<EventsService>>,
    _caller: ServiceCaller,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<EventDocument>> {
    svc.event(&key).await.map_err(ApiError::from_anyhow)?.map(Json).ok_or_else(|| ApiError::not_found("event"))
}

/// Asked with the user's own token: does this user manage the event (its organizer, or an admin)?
async fn manages(
    State(svc): State<Arc<EventsService>>,
    caller: Principal,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Manages>> {
    Ok(Json(Manages { manages: svc.manages(&caller, &key).await.map_err(ApiError::from_anyhow)? }))
}
