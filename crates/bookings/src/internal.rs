//! Internal routes: what other services ask of the bookings service when they run in other
//! processes (events: counts and attendance; payments: bookings, confirmation, refunds;
//! notifications: ticket holders and QR codes). The gateway never routes `/internal`; every route
//! needs a service token, except a refund, which is asked with the refunding user's own token.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use tg_events::ports::{BookingsView, TypeCounts};
use tg_platform::{
    auth::{Principal, ServiceCaller},
    http::{ApiJson, ApiPath},
    ApiError, ApiResult,
};

use crate::{model::BookingView, BookingsService, ConfirmError};

#[derive(Serialize, Deserialize)]
pub struct SoldTotalsRequest {
    pub event_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Attendance {
    pub attended: bool,
}

#[derive(Serialize, Deserialize, Default)]
pub struct RefundRequest {
    /// Ticket ids; all valid tickets of the booking when absent.
    pub tickets: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
pub struct Refunded {
    pub refund_cents: i64,
}

#[derive(Serialize, Deserialize)]
pub struct TicketQr {
    pub code: String,
    pub svg: String,
}

/// Problem code of a confirmation that cannot happen (hold gone, booking cancelled): refund.
pub const CANNOT_CONFIRM: &str = "cannot_confirm";

type Svc = State<Arc<BookingsService>>;

pub fn router(svc: Arc<BookingsService>) -> Router {
    Router::new()
        .route("/internal/v1/events/{id}/ticket-counts", get(counts))
        .route("/internal/v1/events/sold-totals", post(sold_totals))
        .route("/internal/v1/events/{id}/attendance/{user_id}", get(attended))
        .route("/internal/v1/events/{id}/ticket-holders", get(ticket_holders))
        .route("/internal/v1/bookings/{id}", get(booking))
        .route("/internal/v1/bookings/{id}/confirm", post(confirm))
        .route("/internal/v1/bookings/{id}/refund", post(refund))
        .route("/internal/v1/bookings/{id}/ticket-qr-codes", get(ticket_qr_codes))
        .with_state(svc)
}

async fn counts(
    State(svc): Svc,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<HashMap<String, TypeCounts>>> {
    Ok(Json(svc.counts(&id).await.map_err(ApiError::from_anyhow)?))
}

async fn sold_totals(
    State(svc): Svc,
    _caller: ServiceCaller,
    ApiJson(req): ApiJson<SoldTotalsRequest>,
) -> ApiResult<Json<HashMap<String, i64>>> {
    if req.event_ids.len() > 1000 {
        return Err(ApiError::bad_request("too_many_ids", "at most 1000 event ids at once"));
    }
    Ok(Json(svc.sold_totals(&req.event_ids).await.map_err(ApiError::from_anyhow)?))
}

async fn attended(
    State(svc): Svc,
    _caller: ServiceCaller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Attendance>> {
    let attended = svc.attended(&id, &user_id).await.map_err(ApiError::from_anyhow)?.unwrap_or(false);
    Ok(Json(Attendance { attended }))
}

async fn ticket_holders(
    State(svc): Svc,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(svc.ticket_holders(&id).await?))
}

async fn booking(
    State(svc): Svc,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BookingView>> {
    svc.find(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("booking"))
}

/// 204 when confirmed (or already); 409 `cannot_confirm` when the payment must be refunded instead.
async fn confirm(State(svc): Svc, _caller: ServiceCaller, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    match svc.confirm(&id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(ConfirmError::Internal(e)) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::conflict(CANNOT_CONFIRM, e.to_string())),
    }
}

async fn refund(
    State(svc): Svc,
    caller: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RefundRequest>,
) -> ApiResult<Json<Refunded>> {
    let (_, refund_cents) = svc.refund_tickets(&caller, &id, req.tickets.as_deref()).await?;
    Ok(Json(Refunded { refund_cents }))
}

async fn ticket_qr_codes(
    State(svc): Svc,
    _caller: ServiceCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<TicketQr>>> {
    let tickets = svc.tickets_with_qr(&id).await.map_err(ApiError::from_anyhow)?;
    Ok(Json(tickets.into_iter().map(|(_, code, _, svg)| TicketQr { code, svg }).collect()))
}
