//! HTTP API of the bookings service.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::Principal,
    http::{idempotency_key, ApiJson, ApiPath},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    checkin::Scan,
    model::{BookingRequest, BookingView, ScanResult, TicketView},
    BookingsService,
};

type Svc = State<Arc<BookingsService>>;

pub fn router(svc: Arc<BookingsService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_booking))
        .routes(routes!(get_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(my_bookings))
        .routes(routes!(my_tickets))
        .routes(routes!(ticket_qr))
        .routes(routes!(ticket_keys))
        .routes(routes!(check_in))
        .routes(routes!(check_in_batch))
        .routes(routes!(attendees))
        .routes(routes!(attendees_csv))
        .routes(routes!(get_staff, set_staff))
        .routes(routes!(availability))
        .routes(routes!(sales))
        .with_state(svc)
}

#[utoipa::path(post, path = "/api/v1/bookings", tag = "bookings", security(("bearer" = [])), request_body = BookingRequest,
    params(("Idempotency-Key" = String, Header, description = "unique per intended booking; a retry with the same key returns the same booking")),
    responses((status = 201, body = BookingView, description = "held until expires_at"),
              (status = 400, body = Problem, description = "missing Idempotency-Key"),
              (status = 409, body = Problem, description = "sold out, capacity, per-user limit, not on sale, booking closed"),
              (status = 422, body = Problem)))]
async fn create_booking(
    svc: Svc,
    me: Principal,
    headers: HeaderMap,
    ApiJson(req): ApiJson<BookingRequest>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let (booking, replayed) = svc.hold(&me.user_id, key, &req).await?;
    let mut res = (StatusCode::CREATED, Json(booking)).into_response();
    if replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// The booking if the caller owns it (or is an admin); 404 otherwise.
async fn own_booking(svc: &BookingsService, me: &Principal, id: &str) -> ApiResult<BookingView> {
    let b = svc.store.booking(id).await?.ok_or_else(|| ApiError::not_found("booking"))?;
    if b.user_id == me.user_id || me.is_admin() {
        Ok(b)
    } else {
        Err(ApiError::not_found("booking"))
    }
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = BookingView), (status = 404, body = Problem)))]
async fn get_booking(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<BookingView>> {
    Ok(Json(own_booking(&svc, &me, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = BookingView), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "not refundable, or already ended")))]
async fn cancel_booking(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<BookingView>> {
    Ok(Json(svc.cancel(&me, &id).await?))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BookingList {
    pub items: Vec<BookingView>,
}

#[utoipa::path(get, path = "/api/v1/me/bookings", tag = "bookings", security(("bearer" = [])),
    responses((status = 200, body = BookingList)))]
async fn my_bookings(svc: Svc, me: Principal) -> ApiResult<Json<BookingList>> {
    let ids = svc.store.bookings_of_user(&me.user_id, None, 100).await?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(b) = svc.store.booking(&id).await? {
            items.push(b);
        }
    }
    Ok(Json(BookingList { items }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TicketList {
    pub items: Vec<TicketView>,
}

#[utoipa::path(get, path = "/api/v1/me/tickets", tag = "tickets", security(("bearer" = [])),
    responses((status = 200, body = TicketList)))]
async fn my_tickets(svc: Svc, me: Principal) -> ApiResult<Json<TicketList>> {
    let rows = svc.store.tickets_of_user(&me.user_id).await?;
    Ok(Json(TicketList { items: rows.iter().map(|t| t.view()).collect() }))
}

#[utoipa::path(get, path = "/api/v1/me/tickets/{id}/qr.svg", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", description = "QR code holding the signed ticket token"), (status = 404, body = Problem)))]
async fn ticket_qr(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let t = svc
        .store
        .ticket(&id)
        .await?
        // A cancelled ticket's code is no longer shown: it would only be turned away at the door.
        .filter(|t| t.user_id == me.user_id && t.status == "valid")
        .ok_or_else(|| ApiError::not_found("ticket"))?;
    let svg = svc.qr_codes.get_or_draw(&t.id, &t.token).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, max-age=86400")], svg.to_string())
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/events/{id}/ticket-keys", tag = "tickets", params(("id" = String, Path)),
    responses((status = 200, description = "JWK Set with the event's Ed25519 public key, for offline scanners"), (status = 404, body = Problem)))]
async fn ticket_keys(svc: Svc, ApiPath(id): ApiPath<String>) -> ApiResult<Json<serde_json::Value>> {
    let event = svc.events.event(&id).await.map_err(ApiError::from_anyhow)?;
    let event = event.filter(|e| e.status != "draft").ok_or_else(|| ApiError::not_found("event"))?;
    Ok(Json(svc.keys.public_jwks(&event.id).await.map_err(ApiError::from_anyhow)?))
}

async fn require_scanner(svc: &BookingsService, me: &Principal, event_id: &str) -> ApiResult<String> {
    let event =
        svc.events.event(event_id).await.map_err(ApiError::from_anyhow)?.ok_or_else(|| ApiError::not_found("event"))?;
    if !svc.may_scan(me, &event.id).await? {
        return Err(ApiError::forbidden("only the organizer, admins and appointed door staff scan tickets"));
    }
    Ok(event.id)
}

#[utoipa::path(post, path = "/api/v1/events/{id}/checkins", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = Scan,
    responses((status = 200, body = ScanResult, description = "valid, already_checked_in, wrong_event, cancelled, forged or unknown_code"),
              (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "the nonce was used at another event"),
              (status = 422, body = Problem, description = "neither or both of token and code, or a malformed field")))]
async fn check_in(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(scan): ApiJson<Scan>,
) -> ApiResult<Json<ScanResult>> {
    let event_id = require_scanner(&svc, &me, &id).await?;
    Ok(Json(svc.scan(&event_id, &scan).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBatch {
    /// Scans recorded offline, in the order they happened (at most 1000).
    pub scans: Vec<Scan>,
}

#[derive(Serialize, ToSchema)]
pub struct ScanBatchResult {
    pub results: Vec<ScanResult>,
}

#[utoipa::path(post, path = "/api/v1/events/{id}/checkins/batch", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = ScanBatch,
    responses((status = 200, body = ScanBatchResult), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn check_in_batch(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(batch): ApiJson<ScanBatch>,
) -> ApiResult<Json<ScanBatchResult>> {
    let event_id = require_scanner(&svc, &me, &id).await?;
    if batch.scans.len() > 1000 {
        return Err(ApiError::field("scans", "at most 1000 scans per upload"));
    }
    // Every scan is checked before any is applied, so a refused batch changes nothing.
    for scan in &batch.scans {
        scan.validate()?;
        svc.check_nonce(&event_id, &scan.nonce).await?;
    }
    let mut results = Vec::with_capacity(batch.scans.len());
    for scan in &batch.scans {
        results.push(svc.scan(&event_id, scan).await?);
    }
    Ok(Json(ScanBatchResult { results }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Attendee {
    pub ticket_id: String,
    pub code: String,
    pub ticket_type_id: String,
    pub name: String,
    pub email: Option<String>,
    /// `valid` or `cancelled`.
    pub status: String,
    pub checked_in_at: Option<String>,
    pub gate: Option<String>,
}

async fn attendee_list(svc: &BookingsService, me: &Principal, id: &str) -> ApiResult<Vec<Attendee>> {
    let event_id = managed_event(svc, me, id).await?;
    let tickets = svc.store.tickets_of_event(&event_id).await?;
    let mut contacts = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(tickets.len());
    for t in tickets {
        if !contacts.contains_key(&t.user_id) {
            let c = svc.users.contact(&t.user_id).await.map_err(ApiError::from_anyhow)?;
            contacts.insert(t.user_id.clone(), c.unwrap_or_default());
        }
        let (name, email) = contacts[&t.user_id].clone();
        out.push(Attendee {
            ticket_id: t.id,
            code: t.code,
            ticket_type_id: t.type_id,
            name,
            email,
            status: t.status,
            checked_in_at: t.checked_in_at.map(tg_platform::clock::rfc3339),
            gate: t.checkin_gate,
        });
    }
    Ok(out)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttendeeList {
    pub items: Vec<Attendee>,
    pub checked_in: usize,
}

#[utoipa::path(get, path = "/api/v1/events/{id}/attendees", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AttendeeList), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn attendees(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<AttendeeList>> {
    let items = attendee_list(&svc, &me, &id).await?;
    let checked_in = items.iter().filter(|a| a.checked_in_at.is_some()).count();
    Ok(Json(AttendeeList { items, checked_in }))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/attendees.csv", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", description = "one row per ticket"), (status = 403, body = Problem)))]
async fn attendees_csv(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let items = attendee_list(&svc, &me, &id).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = ["ticket_id", "code", "ticket_type", "name", "email", "status", "checked_in_at", "gate"];
    w.write_record(header).map_err(ApiError::internal)?;
    for a in &items {
        w.write_record(csv_row(a)).map_err(ApiError::internal)?;
    }
    let body = w.into_inner().map_err(ApiError::internal)?;
    let disposition = format!(
        "attachment; filename=\"attendees-{}.csv\"",
        id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    );
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}

/// One attendee as a CSV row. Every cell is made safe, not just the free-text ones: an e-mail
/// address, say, may well begin with `=`.
fn csv_row(a: &Attendee) -> [String; 8] {
    [
        &a.ticket_id,
        &a.code,
        &a.ticket_type_id,
        &a.name,
        a.email.as_deref().unwrap_or(""),
        &a.status,
        a.checked_in_at.as_deref().unwrap_or(""),
        a.gate.as_deref().unwrap_or(""),
    ]
    .map(spreadsheet_safe)
}

/// Cells starting with = + - @ (or a tab or carriage return) are formulas to spreadsheets; prefix
/// them so they stay text.
fn spreadsheet_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_csv_cell_is_safe_from_spreadsheet_formulas() {
        let formula = "=HYPERLINK(\"http://evil.example\")";
        let a = Attendee {
            ticket_id: "@t".into(),
            code: "+c".into(),
            ticket_type_id: "-vip".into(),
            name: formula.into(),
            email: Some("=1+1@example.com".into()),
            status: "\tvalid".into(),
            checked_in_at: Some("\r2026".into()),
            gate: Some("=A".into()),
        };
        for cell in csv_row(&a) {
            assert!(cell.starts_with('\''), "{cell:?} would be a formula");
        }
        let plain = Attendee { email: Some("ann@example.com".into()), name: "Ann".into(), ..a };
        assert_eq!(csv_row(&plain)[4], "ann@example.com");
        assert_eq!(csv_row(&plain)[3], "Ann");
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    /// E-mails of door staff who may scan tickets for this event.
    pub emails: Vec<String>,
}

async fn managed_event(svc: &BookingsService, me: &Principal, id: &str) -> ApiResult<String> {
    let event =
        svc.events.event(id).await.map_err(ApiError::from_anyhow)?.ok_or_else(|| ApiError::not_found("event"))?;
    if !svc.events.manages(me, &event.id).await.map_err(ApiError::from_anyhow)? {
        return Err(ApiError::forbidden("only the event's organizer or an admin may do this"));
    }
    Ok(event.id)
}

#[utoipa::path(get, path = "/api/v1/events/{id}/staff", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Staff), (status = 403, body = Problem)))]
async fn get_staff(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Staff>> {
    let event_id = managed_event(&svc, &me, &id).await?;
    Ok(Json(Staff { emails: svc.store.staff(&event_id).await? }))
}

#[utoipa::path(put, path = "/api/v1/events/{id}/staff", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = Staff, responses((status = 200, body = Staff), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_staff(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Staff>,
) -> ApiResult<Json<Staff>> {
    let event_id = managed_event(&svc, &me, &id).await?;
    if req.emails.len() > 200 {
        return Err(ApiError::field("emails", "at most 200 door staff"));
    }
    let mut emails: Vec<String> = Vec::new();
    for (i, e) in req.emails.iter().enumerate() {
        emails.push(tg_platform::validate::email(e).map_err(|m| ApiError::field(&format!("emails[{i}]"), m))?);
    }
    emails.sort();
    emails.dedup();
    svc.store.set_staff(&event_id, &emails).await?;
    Ok(Json(Staff { emails }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TypeAvailability {
    pub ticket_type_id: String,
    pub quantity: i64,
    /// Neither sold nor held; never below zero.
    pub available: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Availability {
    pub types: Vec<TypeAvailability>,
    /// What the event's total capacity still allows, across types.
    pub total_available: i64,
}

#[utoipa::path(get, path = "/api/v1/events/{id}/availability", tag = "bookings", params(("id" = String, Path)),
    responses((status = 200, body = Availability), (status = 404, body = Problem)))]
async fn availability(svc: Svc, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Availability>> {
    let event = svc.events.event(&id).await.map_err(ApiError::from_anyhow)?;
    // Drafts are secret and private events are not sold here: neither has availability to show.
    let event = event
        .filter(|e| e.status != "draft" && e.visibility != "private")
        .ok_or_else(|| ApiError::not_found("event"))?;
    let counts = svc.store.inventory(&event.id).await?;
    let taken = |type_id: &str| counts.get(type_id).map_or(0, |c| c.sold + c.held);
    let total_taken: i64 = counts.values().map(|c| c.sold + c.held).sum();
    let total_available = (event.ticketing.total_capacity - total_taken).max(0);
    let types = event
        .ticketing
        .types
        .iter()
        .map(|t| TypeAvailability {
            ticket_type_id: t.id.clone(),
            quantity: t.quantity,
            available: (t.quantity - taken(&t.id)).clamp(0, total_available),
        })
        .collect();
    Ok(Json(Availability { types, total_available }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TypeSalesView {
    pub ticket_type_id: String,
    pub name: String,
    pub currency: String,
    pub quantity: i64,
    /// Valid (confirmed, not cancelled) tickets.
    pub sold: i64,
    /// Seats in unpaid holds right now.
    pub held: i64,
    pub revenue: f64,
    pub checked_in: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DailySalesView {
    /// Date in the event's time zone, `YYYY-MM-DD`.
    pub date: String,
    pub ticket_type_id: String,
    pub tickets: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Money {
    pub currency: String,
    pub amount: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Sales {
    pub types: Vec<TypeSalesView>,
    pub sold: i64,
    /// Revenue of valid tickets, one entry per currency (types may be priced in USD and KHR).
    pub revenue: Vec<Money>,
    pub checked_in: i64,
    /// New valid tickets per day and type, oldest first.
    pub daily: Vec<DailySalesView>,
}

#[utoipa::path(get, path = "/api/v1/events/{id}/sales", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Sales), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn sales(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Sales>> {
    let event_id = managed_event(&svc, &me, &id).await?;
    let event = svc
        .events
        .event(&event_id)
        .await
        .map_err(ApiError::from_anyhow)?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let counts = svc.store.inventory(&event_id).await?;
    let by_type = svc.store.type_sales(&event_id).await?;
    let mut revenue: Vec<Money> = Vec::new();
    let types: Vec<TypeSalesView> = event
        .ticketing
        .types
        .iter()
        .map(|t| {
            let s = by_type.iter().find(|s| s.type_id == t.id);
            let amount = s.map_or(0, |s| s.revenue_cents) as f64 / 100.0;
            match revenue.iter_mut().find(|m| m.currency == t.currency) {
                Some(m) => m.amount += amount,
                None => revenue.push(Money { currency: t.currency.clone(), amount }),
            }
            TypeSalesView {
                ticket_type_id: t.id.clone(),
                name: t.name.clone(),
                currency: t.currency.clone(),
                quantity: t.quantity,
                sold: s.map_or(0, |s| s.tickets),
                held: counts.get(&t.id).map_or(0, |c| c.held),
                revenue: amount,
                checked_in: s.map_or(0, |s| s.checked_in),
            }
        })
        .collect();
    // The chart's days are the event's days (its zone's offset today).
    let offset_ms = jiff::tz::TimeZone::get(&event.datetime.timezone)
        .map(|tz| i64::from(tz.to_offset(jiff::Timestamp::now()).seconds()) * 1000)
        .unwrap_or(0);
    let daily = svc
        .store
        .daily_sales(&event_id, offset_ms)
        .await?
        .into_iter()
        .map(|d| DailySalesView {
            date: tg_platform::clock::rfc3339(d.day * 86_400_000).get(..10).unwrap_or_default().to_owned(),
            ticket_type_id: d.type_id,
            tickets: d.tickets,
        })
        .collect();
    Ok(Json(Sales {
        sold: types.iter().map(|t| t.sold).sum(),
        checked_in: types.iter().map(|t| t.checked_in).sum(),
        revenue,
        types,
        daily,
    }))
}
